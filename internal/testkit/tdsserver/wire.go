package tdsserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"unicode/utf16"
)

// Packet status bits ([MS-TDS] 2.2.3.1.2).
const (
	statusEOM       = 0x01 // the last packet of the message
	statusIgnore    = 0x02 // the client asks the server to ignore the message
	statusReset     = 0x08 // RESETCONNECTION
	statusResetSkip = 0x10 // RESETCONNECTIONSKIPTRAN
)

// maxPacket is the packet size the server announces in its login answer
// (ENVCHANGE 4), and the largest packet it reads.
const maxPacket = 4096

// readMessage reads one client message and checks its framing as SQL
// Server would (see readClientMessage); a message the client marked
// IGNORE is skipped.
func (s *session) readMessage() (byte, []byte, error) {
	for {
		typ, status, msg, err := readClientMessage(s.rw)
		if err != nil {
			return 0, nil, err
		}
		if status&statusIgnore == 0 {
			return typ, msg, nil
		}
	}
}

// readClientMessage reads one message from a client ([MS-TDS] 2.2.3) and
// refuses a malformed one, which ends the session: a packet whose type is
// not the message's, a status with undefined bits, RESETCONNECTION anywhere
// but on the first packet of a SQL batch, RPC or transaction manager
// request, a length under the header's or over maxPacket, or a packet ID
// that is not the previous packet's plus one (modulo 256). It returns the
// type, the first packet's status, and the joined payload.
func readClientMessage(r io.Reader) (typ, status byte, payload []byte, err error) {
	var prevID byte
	for i := 0; ; i++ {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, 0, nil, err
		}
		t, st, n, id := h[0], h[1], int(binary.BigEndian.Uint16(h[2:4])), h[6]
		switch {
		case n < 8 || n > maxPacket:
			return 0, 0, nil, fmt.Errorf("tds: packet length %d outside 8..%d", n, maxPacket)
		case st&^(statusEOM|statusIgnore|statusReset|statusResetSkip) != 0:
			return 0, 0, nil, fmt.Errorf("tds: packet status %#x has undefined bits", st)
		case i > 0 && t != typ:
			return 0, 0, nil, fmt.Errorf("tds: packet type %#x inside a message of type %#x", t, typ)
		case i > 0 && id != prevID+1:
			return 0, 0, nil, fmt.Errorf("tds: packet ID %d after %d in one message", id, prevID)
		case st&(statusReset|statusResetSkip) != 0 && (i > 0 || (t != packSQLBatch && t != packRPC && t != packTransMgr)):
			return 0, 0, nil, fmt.Errorf("tds: RESETCONNECTION on packet %d of a message of type %#x", i+1, t)
		}
		if i == 0 {
			typ, status = t, st
		}
		prevID = id
		body := make([]byte, n-8)
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, 0, nil, err
		}
		payload = append(payload, body...)
		if st&statusEOM != 0 {
			return typ, status, payload, nil
		}
	}
}

// writeMessage sends a message in packets of at most maxPacket bytes.
func (s *session) writeMessage(typ byte, msg []byte) error {
	return writePackets(s.rw, typ, msg, s.spid)
}

// writePackets splits a message into packets numbered from 1, as SQL
// Server and the drivers number each message's packets.
func writePackets(w io.Writer, typ byte, msg []byte, spid uint16) error {
	const max = maxPacket - 8
	var out bytes.Buffer
	var id byte
	for first := true; first || len(msg) > 0; first = false {
		chunk := msg[:min(len(msg), max)]
		msg = msg[len(chunk):]
		status := byte(0)
		if len(msg) == 0 {
			status = statusEOM
		}
		id++
		out.Write([]byte{typ, status})
		out.Write(binary.BigEndian.AppendUint16(nil, uint16(len(chunk)+8)))
		out.Write(binary.BigEndian.AppendUint16(nil, spid))
		out.Write([]byte{id, 0})
		out.Write(chunk)
	}
	_, err := w.Write(out.Bytes())
	return err
}

// HandshakeConn carries a TLS handshake inside PRELOGIN packets, the way
// [MS-TDS] 2.2.6.5 and the driver's tlsHandshakeConn do, then steps aside
// when Done is called. The MITM test proxy uses it too.
type HandshakeConn struct {
	net.Conn
	spid        uint16
	pending     []byte
	passthrough bool
}

// NewHandshakeConn wraps c; spid goes in the packets it writes.
func NewHandshakeConn(c net.Conn, spid uint16) *HandshakeConn {
	return &HandshakeConn{Conn: c, spid: spid}
}

// Done makes TLS records flow bare, as they do after the handshake.
func (h *HandshakeConn) Done() { h.passthrough = true }

// Read returns the TLS bytes of the PRELOGIN messages read, refusing a
// message of any other type or badly framed (readClientMessage).
func (h *HandshakeConn) Read(p []byte) (int, error) {
	if h.passthrough {
		return h.Conn.Read(p)
	}
	for len(h.pending) == 0 {
		typ, _, msg, err := readClientMessage(h.Conn)
		if err != nil {
			return 0, err
		}
		if typ != packPrelogin {
			return 0, fmt.Errorf("tds: packet type %#x during the TLS handshake, want PRELOGIN", typ)
		}
		h.pending = msg
	}
	n := copy(p, h.pending)
	h.pending = h.pending[n:]
	return n, nil
}

func (h *HandshakeConn) Write(p []byte) (int, error) {
	if h.passthrough {
		return h.Conn.Write(p)
	}
	if err := writePackets(h.Conn, packPrelogin, p, h.spid); err != nil {
		return 0, err
	}
	return len(p), nil
}

// peekedConn reads through the bufio.Reader that peeked the first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// preloginOption returns the first byte of a PRELOGIN option, or 0.
func preloginOption(b []byte, token byte) byte {
	if i := preloginOffset(b, token); i >= 0 {
		return b[i]
	}
	return 0
}

// preloginOffset returns where a PRELOGIN option's data starts, or -1.
func preloginOffset(b []byte, token byte) int {
	for i := 0; i+5 <= len(b) && b[i] != 0xFF; i += 5 {
		if b[i] == token {
			off := int(binary.BigEndian.Uint16(b[i+1:]))
			if l := int(binary.BigEndian.Uint16(b[i+3:])); l > 0 && off < len(b) {
				return off
			}
		}
	}
	return -1
}

// SetPreloginEncrypt rewrites the ENCRYPTION option of a PRELOGIN message
// in place and returns the value it had (-1 without one): what a
// man in the middle does to strip TLS.
func SetPreloginEncrypt(msg []byte, v byte) int {
	i := preloginOffset(msg, 0x01)
	if i < 0 {
		return -1
	}
	old := msg[i]
	msg[i] = v
	return int(old)
}

// ReadMessage reads one TDS message (packets up to end-of-message) and
// returns its packets as they were on the wire, and the joined payload.
func ReadMessage(r io.Reader) (wire, payload []byte, err error) {
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, nil, err
		}
		n := int(binary.BigEndian.Uint16(h[2:4]))
		if n < 8 {
			return nil, nil, fmt.Errorf("bad packet length %d", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, nil, err
		}
		wire = append(append(wire, h[:]...), body...)
		payload = append(payload, body...)
		if h[1]&0x01 != 0 {
			return wire, payload, nil
		}
	}
}

func preloginResponse(encrypt byte, fedAuth bool) []byte {
	opts := []struct {
		token byte
		data  []byte
	}{
		{0x00, []byte{16, 0, 0x07, 0xD0, 0, 0}}, // VERSION 16.0.2000
		{0x01, []byte{encrypt}},                 // ENCRYPTION
		{0x02, []byte{0}},                       // INSTOPT
		{0x04, []byte{0}},                       // MARS off
	}
	if fedAuth {
		opts = append(opts, struct {
			token byte
			data  []byte
		}{preloginFedAuthRequired, []byte{1}})
	}
	var head, data []byte
	off := len(opts)*5 + 1
	for _, o := range opts {
		head = append(head, o.token)
		head = binary.BigEndian.AppendUint16(head, uint16(off+len(data)))
		head = binary.BigEndian.AppendUint16(head, uint16(len(o.data)))
		data = append(data, o.data...)
	}
	return append(append(head, 0xFF), data...)
}

// parseLogin7 reads the user, password and database from a LOGIN7 record.
func parseLogin7(b []byte) (user, password, database string, err error) {
	if len(b) < 94 {
		return "", "", "", errors.New("LOGIN7 too short")
	}
	field := func(at int) ([]byte, error) {
		off := int(binary.LittleEndian.Uint16(b[at:]))
		n := int(binary.LittleEndian.Uint16(b[at+2:])) * 2
		if off+n > len(b) {
			return nil, errors.New("LOGIN7 field out of range")
		}
		return b[off : off+n], nil
	}
	u, err := field(40) // ibUserName
	if err != nil {
		return "", "", "", err
	}
	p, err := field(44) // ibPassword
	if err != nil {
		return "", "", "", err
	}
	d, err := field(68) // ibDatabase
	if err != nil {
		return "", "", "", err
	}
	// The password is obfuscated: each byte had its nibbles swapped, then
	// was XORed with 0xA5 ([MS-TDS] 2.2.6.4).
	clear := make([]byte, len(p))
	for i, c := range p {
		c ^= 0xA5
		clear[i] = c<<4 | c>>4
	}
	return fromUCS2(u), fromUCS2(clear), fromUCS2(d), nil
}

// Federated authentication ([MS-TDS] 2.2.6.4 FeatureExt, 2.2.7.11
// FEATUREEXTACK).
const (
	preloginFedAuthRequired     byte = 0x06 // PRELOGIN option FEDAUTHREQUIRED
	featureFedAuth              byte = 0x02 // FeatureId FEDAUTH
	featureTerminator           byte = 0xFF
	fedAuthLibrarySecurityToken byte = 0x01
	fExtension                  byte = 0x10 // OptionFlags3: ibExtension points to FeatureExt
)

// fedAuth is a LOGIN7's FEDAUTH feature extension.
type fedAuth struct {
	library byte
	echo    bool // fFedAuthEcho
	token   string
}

// parseFedAuth reads the FEDAUTH feature extension of a LOGIN7 record, or
// nil without one. The record's ibExtension points to a DWORD, the offset
// of the FeatureExt block: FeatureId BYTE, FeatureDataLen DWORD, data,
// repeated up to the 0xFF terminator. FEDAUTH's data is an options byte
// (library << 1 | fFedAuthEcho) and, for the security token library, the
// token's length in bytes (DWORD) and the token in UCS-2, then an
// optional 32-byte nonce.
func parseFedAuth(b []byte) (*fedAuth, error) {
	if len(b) < 94 || b[27]&fExtension == 0 {
		return nil, nil
	}
	ib := int(binary.LittleEndian.Uint16(b[56:]))
	if int(binary.LittleEndian.Uint16(b[58:])) < 4 || ib+4 > len(b) {
		return nil, errors.New("LOGIN7 extension out of range")
	}
	off := int(binary.LittleEndian.Uint32(b[ib:]))
	for off < len(b) && b[off] != featureTerminator {
		if off+5 > len(b) {
			return nil, errors.New("LOGIN7 FeatureExt truncated")
		}
		id, n := b[off], int(binary.LittleEndian.Uint32(b[off+1:]))
		off += 5
		if n < 0 || off+n > len(b) {
			return nil, errors.New("LOGIN7 feature data out of range")
		}
		data := b[off : off+n]
		off += n
		if id != featureFedAuth {
			continue
		}
		if len(data) < 1 {
			return nil, errors.New("FEDAUTH feature without options")
		}
		f := &fedAuth{library: data[0] >> 1, echo: data[0]&1 != 0}
		if f.library == fedAuthLibrarySecurityToken {
			if len(data) < 5 {
				return nil, errors.New("FEDAUTH security token truncated")
			}
			tl := int(binary.LittleEndian.Uint32(data[1:]))
			if tl < 0 || 5+tl > len(data) {
				return nil, errors.New("FEDAUTH security token out of range")
			}
			f.token = fromUCS2(data[5 : 5+tl])
		}
		return f, nil
	}
	return nil, nil
}

// featureExtAckFedAuth is FEATUREEXTACK for a security token login: the
// FEDAUTH feature acknowledged with no data (no nonce was sent).
func featureExtAckFedAuth() []byte {
	b := []byte{0xAE, featureFedAuth}
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, featureTerminator)
}

// UCS2 is s as TDS sends text (SQL batches, LOGIN7's fields): UTF-16LE.
func UCS2(s string) []byte { return ucs2(s) }

// LoginPassword is password as a LOGIN7 record carries it: UTF-16LE, each
// byte's nibbles swapped, then XORed with 0xA5 ([MS-TDS] 2.2.6.4). What a
// plaintext login shows an attacker.
func LoginPassword(password string) []byte {
	b := ucs2(password)
	for i, c := range b {
		b[i] = (c<<4 | c>>4) ^ 0xA5
	}
	return b
}

func ucs2(s string) []byte {
	var out []byte
	for _, r := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, r)
	}
	return out
}

func fromUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func bVarchar(s string) []byte {
	return append([]byte{byte(len([]rune(s)))}, ucs2(s)...)
}

// Tokens ([MS-TDS] 2.2.7).

func envChange(typ byte, newValue, oldValue string) []byte {
	body := append([]byte{typ}, bVarchar(newValue)...)
	body = append(body, bVarchar(oldValue)...)
	return append(binary.LittleEndian.AppendUint16([]byte{0xE3}, uint16(len(body))), body...)
}

func loginAck() []byte {
	body := []byte{1, 0x74, 0x00, 0x00, 0x04} // SQL interface, TDS 7.4
	body = append(body, bVarchar("Microsoft SQL Server")...)
	body = append(body, 16, 0, 0x07, 0xD0)
	return append(binary.LittleEndian.AppendUint16([]byte{0xAD}, uint16(len(body))), body...)
}

func doneToken(status, curCmd uint16, rows uint64) []byte {
	b := []byte{0xFD}
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, curCmd)
	return binary.LittleEndian.AppendUint64(b, rows)
}

func errorToken(number int32, class byte, msg string) []byte {
	body := binary.LittleEndian.AppendUint32(nil, uint32(number))
	body = append(body, 1, class)
	body = binary.LittleEndian.AppendUint16(body, uint16(len([]rune(msg))))
	body = append(body, ucs2(msg)...)
	body = append(body, bVarchar("tdsserver")...)
	body = append(body, bVarchar("")...)
	body = binary.LittleEndian.AppendUint32(body, 1)
	return append(binary.LittleEndian.AppendUint16([]byte{0xAA}, uint16(len(body))), body...)
}

type colType int

const (
	intn colType = iota
	bigint
	nvarchar
)

type column struct {
	name string
	typ  colType
}

// resultSet encodes a result of one row.
func resultSet(cols []column, row []any) []byte { return resultRows(cols, [][]any{row}) }

// resultRows encodes COLMETADATA, the ROWs and DONE with a row count.
func resultRows(cols []column, rows [][]any) []byte {
	b := []byte{0x81}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = binary.LittleEndian.AppendUint32(b, 0)      // UserType
		b = binary.LittleEndian.AppendUint16(b, 0x0001) // Flags: nullable
		switch c.typ {
		case intn:
			b = append(b, 0x26, 4)
		case bigint:
			b = append(b, 0x26, 8)
		case nvarchar:
			b = append(b, 0xE7)
			b = binary.LittleEndian.AppendUint16(b, 8000)
			b = append(b, 0x09, 0x04, 0xD0, 0x00, 0x34) // collation Latin1_General_CI_AS
		}
		b = append(b, bVarchar(c.name)...)
	}
	for _, row := range rows {
		b = append(b, 0xD1)
		for i, c := range cols {
			switch c.typ {
			case intn:
				b = append(b, 4)
				b = binary.LittleEndian.AppendUint32(b, uint32(row[i].(int32)))
			case bigint:
				b = append(b, 8)
				b = binary.LittleEndian.AppendUint64(b, uint64(row[i].(int64)))
			case nvarchar:
				s := ucs2(row[i].(string))
				b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
				b = append(b, s...)
			}
		}
	}
	return append(b, doneToken(0x0010, 0xC1, uint64(len(rows)))...)
}
