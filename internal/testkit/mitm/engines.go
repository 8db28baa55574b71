package mitm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
)

// wholeTLS handles Redis and MongoDB, where TLS wraps the connection.
func (p *Proxy) wholeTLS(client net.Conn) {
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	dialRaw := func() (net.Conn, error) {
		c, release, err := p.dial()
		if err != nil {
			return nil, err
		}
		releases = append(releases, release)
		return c, nil
	}
	dialUp := func() (net.Conn, error) {
		c, err := dialRaw()
		if err != nil || !p.cfg.UpstreamTLS {
			return c, err
		}
		tc, err := upstreamTLS(c)
		if err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	switch p.cfg.Attack {
	case Relay, CutHandshake:
		up, err := dialRaw()
		if err != nil {
			return
		}
		if p.cfg.Attack == CutHandshake {
			p.cut(client, up, 60)
			return
		}
		p.relay(client, up)
	case StripTLS:
		br := bufio.NewReader(client)
		first, err := br.Peek(1)
		if err != nil || first[0] == 0x16 {
			return // a plaintext server hangs up on a ClientHello
		}
		up, err := dialUp()
		if err != nil {
			return
		}
		p.relay(&readConn{Conn: client, r: br}, up)
	case Flood:
		br := bufio.NewReader(client)
		if _, err := br.Peek(1); err != nil {
			return
		}
		p.flood(client, nil)
	default:
		br := bufio.NewReader(client)
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		rc := &readConn{Conn: client, r: br}
		if first[0] != 0x16 {
			// A plaintext client: read along.
			if up, err := dialUp(); err == nil {
				p.relay(rc, up)
			}
			return
		}
		tc, ok := p.intercept(rc)
		if !ok {
			return
		}
		up, err := dialUp()
		if err != nil {
			return
		}
		p.interceptedRelay(tc, up)
	}
}

// MySQL capability flag CLIENT_SSL.
const clientSSL = 0x0800

func readMySQLPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	pkt := make([]byte, 4+n)
	copy(pkt, h[:])
	_, err := io.ReadFull(r, pkt[4:])
	return pkt, err
}

// greetingCaps returns the offset of the lower capability flags in a
// protocol-10 greeting packet (header included).
func greetingCaps(pkt []byte) (int, error) {
	i := bytes.IndexByte(pkt[5:], 0) // server version, NUL-terminated
	if len(pkt) < 4 || pkt[4] != 10 || i < 0 {
		return 0, errors.New("not a protocol 10 greeting")
	}
	off := 5 + i + 1 + 4 + 8 + 1 // version NUL, connection id, auth data 1, filler
	if off+2 > len(pkt) {
		return 0, errors.New("short greeting")
	}
	return off, nil
}

func (p *Proxy) mysql(client net.Conn) {
	up, release, err := p.dial()
	if err != nil {
		return
	}
	defer release()
	greet, err := readMySQLPacket(up)
	if err != nil {
		return
	}
	if p.cfg.Attack == StripTLS {
		off, err := greetingCaps(greet)
		if err != nil {
			return
		}
		caps := binary.LittleEndian.Uint16(greet[off:])
		binary.LittleEndian.PutUint16(greet[off:], caps&^clientSSL)
	}
	if _, err := client.Write(greet); err != nil {
		return
	}
	// The client's answer: an SSLRequest (32 bytes, CLIENT_SSL set) to start
	// TLS, or its plaintext login.
	resp, err := readMySQLPacket(client)
	if err != nil {
		return
	}
	wantsTLS := len(resp) == 4+32 && binary.LittleEndian.Uint16(resp[4:])&clientSSL != 0
	if _, err := up.Write(resp); err != nil {
		return
	}
	if !wantsTLS {
		p.relay(client, up)
		return
	}
	switch p.cfg.Attack {
	case Relay, StripTLS:
		p.relay(client, up)
	case CutHandshake:
		p.cut(client, up, 60)
	case Flood:
		p.flood(client, nil)
	default:
		tc, ok := p.intercept(client)
		if !ok {
			return
		}
		upTLS, err := upstreamTLS(up)
		if err != nil {
			return
		}
		p.interceptedRelay(tc, upTLS)
	}
}

func (p *Proxy) tds(client net.Conn) {
	up, release, err := p.dial()
	if err != nil {
		return
	}
	defer release()
	hello, _, err := tdsserver.ReadMessage(client)
	if err != nil || len(hello) < 8 || hello[0] != 0x12 {
		return // TDS 8 strict (TLS first) is not attacked here
	}
	asked := tdsserver.SetPreloginEncrypt(hello[8:], tdsserver.EncryptNotSup)
	intercepting := asked != int(tdsserver.EncryptNotSup) && p.cfg.Attack.intercepts()
	switch {
	case p.cfg.Attack == StripTLS || intercepting:
		// The server is told the client cannot encrypt, so it stays in
		// plaintext while the proxy deals with the client.
	default:
		tdsserver.SetPreloginEncrypt(hello[8:], byte(asked))
	}
	if _, err := up.Write(hello); err != nil {
		return
	}
	answer, _, err := tdsserver.ReadMessage(up)
	if err != nil {
		return
	}
	switch {
	case p.cfg.Attack == StripTLS:
		tdsserver.SetPreloginEncrypt(answer[8:], tdsserver.EncryptNotSup)
	case intercepting:
		tdsserver.SetPreloginEncrypt(answer[8:], tdsserver.EncryptOn)
	}
	if p.cfg.Attack == Flood && asked != int(tdsserver.EncryptNotSup) {
		tdsserver.SetPreloginEncrypt(answer[8:], tdsserver.EncryptOn)
		if _, err := client.Write(answer); err != nil {
			return
		}
		p.flood(client, func(b []byte) []byte {
			var buf bytes.Buffer
			tdsserver.NewHandshakeConn(nopConn{&buf}, 0).Write(b)
			return buf.Bytes()
		})
		return
	}
	if _, err := client.Write(answer); err != nil {
		return
	}
	switch {
	case intercepting:
		hc := tdsserver.NewHandshakeConn(client, 0)
		tc, ok := p.intercept(hc)
		if !ok {
			return
		}
		hc.Done()
		p.interceptedRelay(tc, up)
	case p.cfg.Attack == CutHandshake && asked != int(tdsserver.EncryptNotSup):
		p.cut(client, up, 60)
	default:
		p.relay(client, up)
	}
}
