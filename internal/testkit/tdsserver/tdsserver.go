// Package tdsserver is a SQL Server stand-in for tests: no SQL Server runs
// on this machine, so this speaks enough of the TDS wire protocol ([MS-TDS],
// protocol version 7.4 and TDS 8) to the unmodified go-mssqldb driver:
// PRELOGIN with each ENCRYPT answer, the TLS handshake wrapped in TDS
// packets, TDS 8 strict TLS-first with ALPN tds/8.0, LOGIN7 with a password
// check or a federated authentication security token (FEDAUTH feature
// extension, as Entra ID access tokens are sent), LOGINACK, FEATUREEXTACK
// and ENVCHANGE, and SQL batches answering SELECT 1,
// SELECT @@VERSION and the sys.dm_exec_connections query with proper result
// sets, and SET options with DONE. Inside TDS 7.x PRELOGIN packets it
// speaks at most TLS 1.2, as SQL Server does (see MaxPreloginVersion);
// FreeTDS and tedious check it (scripts/tds-peers.sh). Test code only.
package tdsserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// ENCRYPT option values of PRELOGIN ([MS-TDS] 2.2.6.5).
const (
	EncryptOff    byte = 0 // the server supports TLS; the client decides (TLS optional)
	EncryptOn     byte = 1
	EncryptNotSup byte = 2 // no TLS at all
	EncryptReq    byte = 3 // TLS required
)

// Packet types ([MS-TDS] 2.2.3.1.1).
const (
	packSQLBatch = 0x01
	packReply    = 0x04
	packAttn     = 0x06
	packLogin7   = 0x10
	packPrelogin = 0x12
)

// Config is one server set-up: a scenario of the SSL-mode contract.
type Config struct {
	Encrypt byte             // EncryptNotSup, EncryptOff or EncryptReq
	Cert    *tls.Certificate // needed unless Encrypt is EncryptNotSup
	// MinVersion and MaxVersion limit the TLS versions offered; zero:
	// crypto/tls's defaults. Inside TDS 7.x PRELOGIN packets the server
	// never goes above TLS 1.2, whatever MaxVersion says: SQL Server
	// negotiates TLS 1.3 only in TDS 8 strict mode, and the clients that
	// wrap the handshake in PRELOGIN packets rely on it (see
	// MaxPreloginVersion).
	MinVersion uint16
	MaxVersion uint16
	User       string
	Password   string
	// Token is the access token a LOGIN7 with a FEDAUTH feature extension
	// (security token library) must carry; empty, every token is refused.
	// SetToken changes it for later logins without a restart.
	Token string
	// OnSession, if set, is called when a session ends with what it
	// negotiated (cmd/tdsserve logs it). It must not block for long.
	OnSession func(SessionInfo)
}

// MaxPreloginVersion is the highest TLS version the server negotiates
// inside TDS 7.x PRELOGIN packets. SQL Server speaks TLS 1.3 only in TDS 8
// strict mode; and the TDS 7.x handshake runs in lockstep, one PRELOGIN
// packet answered by one, which TLS 1.3 breaks: its client Finished is
// answered by nothing. FreeTDS 1.3 (GnuTLS) completes a TLS 1.3 handshake
// and then waits forever for the login answer; tedious caps the PRELOGIN
// handshake at TLS 1.2 itself.
const MaxPreloginVersion = tls.VersionTLS12

// SessionInfo is what one session negotiated, reported to Config.OnSession.
type SessionInfo struct {
	Spid       uint16
	RemoteAddr string
	// Strict: TDS 8, TLS before any TDS packet; ALPN is what was agreed.
	Strict bool
	ALPN   string
	// ClientEncrypt and Answer are the PRELOGIN ENCRYPTION bytes of the
	// client and of the server's answer; -1 if none was read or sent.
	ClientEncrypt, Answer int
	// Encryption is "none", "login-only" (the client's ENCRYPT_OFF to a
	// server with TLS optional: only LOGIN7 is encrypted), "full",
	// "strict", or "tls-failed" (the handshake did not complete).
	Encryption  string
	TLSVersion  uint16 // 0 without TLS
	CipherSuite uint16
	LoggedIn    bool
	Batches     int   // SQL batches answered
	Unsupported int   // requests answered "not supported" (batches among them)
	Attentions  int   // attention signals acknowledged
	Err         error // why the session ended: io.EOF when the client closed
}

// StopTimeout bounds how long Stop waits for the sessions it closed to end.
// They end within milliseconds of their connection closing; one still
// running after this long is stuck, and Stop says so instead of hanging.
const StopTimeout = 10 * time.Second

// Server listens on a loopback port; Stop and Start keep the port.
type Server struct {
	addr string

	mu   sync.Mutex
	cfg  Config
	run  *run // the listener now serving; nil when stopped
	spid atomic.Uint32

	// writes is the one table, kept across restarts like a database's data:
	// INSERT INTO writes (id) VALUES (n) appends, SELECT id FROM writes reads.
	dataMu sync.Mutex
	writes []int64
}

// Start listens on a free loopback port with cfg.
func Start(cfg Config) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{addr: l.Addr().String(), cfg: cfg}
	if err := s.serve(l); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.addr }

// Port returns the port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// run is one listening period, from listen to Stop. Each has its own
// connections and WaitGroup, so a session of an old run that outlives a
// bounded Stop cannot disturb the next one.
type run struct {
	l      net.Listener
	conns  map[net.Conn]struct{}
	closed bool           // Stop has begun: accepted connections are closed at once
	wg     sync.WaitGroup // the accept loop and every session; Add only under Server.mu while !closed
}

func (s *Server) listen() error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	return s.serve(l)
}

// serve starts a run accepting on l.
func (s *Server) serve(l net.Listener) error {
	r := &run{l: l, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		l.Close()
		return fmt.Errorf("tdsserver %s: already listening", s.addr)
	}
	s.run = r
	cfg := s.cfg
	s.mu.Unlock()
	go s.accept(r, cfg)
	return nil
}

func (s *Server) accept(r *run, cfg Config) {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := r.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		// Register the connection and count its session under the lock
		// Stop takes to set closed: either Stop sees the connection and
		// closes it, or the connection sees closed and is closed here; and
		// no wg.Add follows Stop's Wait.
		s.mu.Lock()
		if r.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer r.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(r.conns, c)
				s.mu.Unlock()
			}()
			sess := &session{srv: s, cfg: cfg, raw: c, spid: uint16(s.spid.Add(1) + 50)}
			sess.info = SessionInfo{Spid: sess.spid, RemoteAddr: c.RemoteAddr().String(), ClientEncrypt: -1, Answer: -1, Encryption: "none"}
			sess.info.Err = sess.serve()
			if cfg.OnSession != nil {
				cfg.OnSession(sess.info)
			}
		}()
	}
}

// Stop closes the listener and every connection, as a server going down
// does, and waits for the sessions to end, at most StopTimeout: after that
// it returns an error saying how many sessions are still running. Stopping a
// stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	r := s.run
	if r == nil {
		s.mu.Unlock()
		return nil
	}
	s.run = nil
	r.closed = true
	r.l.Close()
	for c := range r.conns {
		c.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		s.mu.Lock()
		n := len(r.conns)
		s.mu.Unlock()
		return fmt.Errorf("tdsserver %s: Stop gave up after %v with %d session(s) still running", s.addr, StopTimeout, n)
	}
}

// SetToken sets the access token that logins from now on must carry (see
// Config.Token), as a token's rotation does; sessions already logged in stay.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	s.cfg.Token = token
	s.mu.Unlock()
}

// token is the access token accepted now.
func (s *Server) token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Token
}

// Restart stops the server and starts it on the same port with cfg.
func (s *Server) Restart(cfg Config) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Listen(cfg)
}

// Listen starts a stopped server again on the same port with cfg.
func (s *Server) Listen(cfg Config) error {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	return s.listen()
}

// session is one client connection.
type session struct {
	srv       *Server
	cfg       Config
	raw       net.Conn
	rw        io.ReadWriter // raw, or TLS once encrypted
	encrypted bool
	spid      uint16
	packetID  byte
	info      SessionInfo
}

func (s *session) serve() error {
	br := bufio.NewReader(s.raw)
	first, err := br.Peek(1)
	if err != nil {
		return err
	}
	raw := &peekedConn{Conn: s.raw, r: br}
	s.rw = raw
	if first[0] == 0x16 {
		// TDS 8 strict: TLS first, then TDS inside it.
		if s.cfg.Cert == nil {
			return errors.New("strict TLS without a certificate")
		}
		s.info.Strict, s.info.Encryption = true, "strict"
		tc := tls.Server(raw, s.tlsConfig([]string{"tds/8.0"}))
		if err := tc.Handshake(); err != nil {
			s.info.Encryption = "tls-failed"
			return err
		}
		s.rw, s.encrypted = tc, true
		s.noteTLS(tc)
	}

	// PRELOGIN ([MS-TDS] 2.2.6.5).
	typ, payload, err := s.readMessage()
	if err != nil {
		return err
	}
	if typ != packPrelogin {
		return fmt.Errorf("expected PRELOGIN, got packet type %#x", typ)
	}
	clientEnc := preloginOption(payload, 0x01)
	if preloginOffset(payload, 0x01) >= 0 {
		s.info.ClientEncrypt = int(clientEnc)
	}
	answer, tlsMode := s.negotiate(clientEnc)
	if s.encrypted {
		answer, tlsMode = EncryptNotSup, tlsNone // already inside TLS
	}
	s.info.Answer = int(answer)
	// A client that announces federated authentication (FEDAUTHREQUIRED)
	// gets the option back, set, and must echo it in LOGIN7's FEDAUTH
	// feature extension ([MS-TDS] 2.2.6.5, 2.2.6.4).
	fedAuthAsked := preloginOffset(payload, preloginFedAuthRequired) >= 0
	if err := s.writeMessage(packReply, preloginResponse(answer, fedAuthAsked)); err != nil {
		return err
	}
	if tlsMode == tlsRefuse {
		return errors.New("client refused encryption that the server requires")
	}
	if tlsMode != tlsNone {
		// The handshake travels inside PRELOGIN packets, then TLS records
		// flow bare on the connection.
		hc := NewHandshakeConn(raw, s.spid, &s.packetID)
		tc := tls.Server(hc, s.tlsConfig(nil))
		if err := tc.Handshake(); err != nil {
			s.info.Encryption = "tls-failed"
			return err
		}
		hc.Done()
		s.rw, s.encrypted = tc, true
		s.info.Encryption = "full"
		if tlsMode == tlsLoginOnly {
			s.info.Encryption = "login-only"
		}
		s.noteTLS(tc)
	}

	// LOGIN7 ([MS-TDS] 2.2.6.4).
	typ, payload, err = s.readMessage()
	if err != nil {
		return err
	}
	if typ != packLogin7 {
		return fmt.Errorf("expected LOGIN7, got packet type %#x", typ)
	}
	if tlsMode == tlsLoginOnly {
		// encrypt=false: only the login packet was encrypted.
		s.rw, s.encrypted = raw, false
	}
	user, password, database, err := parseLogin7(payload)
	if err != nil {
		return err
	}
	fed, err := parseFedAuth(payload)
	if err != nil {
		return err
	}
	switch {
	case fed != nil:
		// Federated authentication: the token is the credential.
		if fed.library != fedAuthLibrarySecurityToken || fed.echo != fedAuthAsked {
			msg := "Login failed: unsupported federated authentication request."
			return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
		}
		if want := s.srv.token(); want == "" || fed.token != want {
			msg := "Login failed for user '<token-identified principal>'."
			return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
		}
	case user != s.cfg.User || password != s.cfg.Password:
		msg := fmt.Sprintf("Login failed for user '%s'.", user)
		return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
	}
	if database == "" {
		database = "master"
	}
	var resp []byte
	resp = append(resp, envChange(1, database, "master")...)
	resp = append(resp, envChange(4, "4096", "4096")...)
	resp = append(resp, loginAck()...)
	if fed != nil {
		resp = append(resp, featureExtAckFedAuth()...)
	}
	resp = append(resp, doneToken(0, 0, 0)...)
	if err := s.writeMessage(packReply, resp); err != nil {
		return err
	}
	s.info.LoggedIn = true

	for {
		typ, payload, err := s.readMessage()
		if err != nil {
			return err
		}
		if typ == packAttn {
			// A cancel: the driver sends one when it closes rows before
			// reading the final DONE. Acknowledge with DONE_ATTN ([MS-TDS] 2.2.1.7).
			if err := s.writeMessage(packReply, doneToken(0x0020, 0, 0)); err != nil {
				return err
			}
			s.info.Attentions++
			continue
		}
		if typ != packSQLBatch {
			// Only SQL batches are served; say so as SQL Server would.
			if err := s.writeMessage(packReply, append(errorToken(50000, 16, "tdsserver: only SQL batches are supported"), doneToken(0x0002, 0, 0)...)); err != nil {
				return err
			}
			s.info.Unsupported++
			continue
		}
		answer, ok := s.answer(sqlText(payload))
		if err := s.writeMessage(packReply, answer); err != nil {
			return err
		}
		s.info.Batches++
		if !ok {
			s.info.Unsupported++
		}
	}
}

// noteTLS records the handshake's outcome in the session's info.
func (s *session) noteTLS(tc *tls.Conn) {
	st := tc.ConnectionState()
	s.info.TLSVersion, s.info.CipherSuite, s.info.ALPN = st.Version, st.CipherSuite, st.NegotiatedProtocol
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsFull
	tlsLoginOnly
	tlsRefuse
)

// negotiate applies [MS-TDS] 2.2.6.5's table of client and server ENCRYPT values.
func (s *session) negotiate(client byte) (byte, tlsMode) {
	switch s.cfg.Encrypt {
	case EncryptNotSup:
		return EncryptNotSup, tlsNone
	case EncryptReq:
		if client == EncryptNotSup {
			return EncryptReq, tlsRefuse // SQL Server ends such a connection
		}
		return EncryptReq, tlsFull
	default: // TLS optional
		switch client {
		case EncryptNotSup:
			return EncryptNotSup, tlsNone
		case EncryptOff:
			return EncryptOff, tlsLoginOnly
		default:
			return EncryptOn, tlsFull
		}
	}
}

// tlsConfig is the server's TLS configuration: for TDS 8 strict (alpn
// tds/8.0) as configured, for a handshake inside PRELOGIN packets (alpn
// nil) at most MaxPreloginVersion.
func (s *session) tlsConfig(alpn []string) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{*s.cfg.Cert},
		MinVersion:   s.cfg.MinVersion,
		MaxVersion:   s.cfg.MaxVersion,
		NextProtos:   alpn,
		// SQL Server sends no session tickets.
		SessionTicketsDisabled: true,
	}
	if alpn == nil && (c.MaxVersion == 0 || c.MaxVersion > MaxPreloginVersion) {
		c.MaxVersion = MaxPreloginVersion
	}
	return c
}

// answer runs a batch: the few statements the tests and Verify send, and
// the SET options drivers send after login; false for any other batch,
// answered with an error.
func (s *session) answer(sql string) ([]byte, bool) {
	q := strings.ToLower(strings.Join(strings.Fields(sql), " "))
	if onlySet(sql) {
		// Session options, as tedious sends after every login ("set
		// ansi_nulls on", "set textsize 2147483647", ...): SQL Server
		// applies them and ends the batch with DONE; they change nothing here.
		return doneToken(0, 0, 0), true
	}
	switch {
	case strings.Contains(q, "sys.dm_exec_connections"):
		enc := "FALSE"
		if s.encrypted {
			enc = "TRUE"
		}
		host, port, _ := net.SplitHostPort(s.raw.RemoteAddr().String())
		p, _ := strconv.Atoi(port)
		known := map[string]struct {
			col column
			val any
		}{
			"encrypt_option":     {column{"encrypt_option", nvarchar}, enc},
			"client_net_address": {column{"client_net_address", nvarchar}, host},
			"client_tcp_port":    {column{"client_tcp_port", intn}, int32(p)},
		}
		// Answer with the columns the query names, in its order, as SQL
		// Server would; "*" (or nothing recognised) gives all three.
		names := []string{"encrypt_option", "client_net_address", "client_tcp_port"}
		if list, _, ok := strings.Cut(strings.TrimPrefix(q, "select "), " from "); ok && strings.TrimSpace(list) != "*" {
			var named []string
			for _, n := range strings.Split(list, ",") {
				if _, ok := known[strings.TrimSpace(n)]; ok {
					named = append(named, strings.TrimSpace(n))
				}
			}
			if len(named) > 0 {
				names = named
			}
		}
		cols, row := make([]column, len(names)), make([]any, len(names))
		for i, n := range names {
			cols[i], row[i] = known[n].col, known[n].val
		}
		return resultSet(cols, row), true
	case strings.Contains(q, "@@version"):
		return resultSet([]column{{"", nvarchar}}, []any{"Microsoft SQL Server 2022 (tdsserver, a test stand-in speaking TDS 7.4)"}), true
	case strings.Contains(q, "@@spid"):
		return resultSet([]column{{"", intn}}, []any{int32(s.spid)}), true
	case strings.HasPrefix(q, "select 1"):
		return resultSet([]column{{"", intn}}, []any{int32(1)}), true
	case strings.HasPrefix(q, "insert into writes (id) values ("):
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(q, "insert into writes (id) values ("), ")"), 10, 64)
		if err == nil {
			s.srv.dataMu.Lock()
			s.srv.writes = append(s.srv.writes, id)
			s.srv.dataMu.Unlock()
			return doneToken(0x0010, 0xC3, 1), true // DONE_COUNT, INSERT
		}
	case q == "select id from writes":
		s.srv.dataMu.Lock()
		rows := make([][]any, len(s.srv.writes))
		for i, id := range s.srv.writes {
			rows[i] = []any{id}
		}
		s.srv.dataMu.Unlock()
		return resultRows([]column{{"id", bigint}}, rows), true
	}
	return append(errorToken(208, 16, "tdsserver: statement not supported: "+sql), doneToken(0x0002, 0, 0)...), false
}

// onlySet reports whether a batch is nothing but SET statements, one per
// line or separated by semicolons: "SET option value" or "SET TRANSACTION
// ISOLATION LEVEL ...". A line with more in it ("SET FMTONLY ON SELECT 1
// SET FMTONLY OFF", as FreeTDS's freebcp sends) is not.
func onlySet(sql string) bool {
	n := 0
	for _, stmt := range strings.FieldsFunc(sql, func(r rune) bool { return r == '\n' || r == '\r' || r == ';' }) {
		f := strings.Fields(strings.ToLower(stmt))
		switch {
		case len(f) == 0:
			continue
		case f[0] != "set":
			return false
		case len(f) == 3,
			len(f) >= 5 && len(f) <= 6 && f[1] == "transaction" && f[2] == "isolation" && f[3] == "level":
			n++
		default:
			return false
		}
	}
	return n > 0
}

// readMessage reads packets up to the end-of-message status bit.
func (s *session) readMessage() (byte, []byte, error) {
	wire, msg, err := ReadMessage(s.rw)
	if err != nil {
		return 0, nil, err
	}
	return wire[0], msg, nil
}

// writeMessage splits a message into packets of at most 4096 bytes.
func (s *session) writeMessage(typ byte, msg []byte) error {
	return writePackets(s.rw, typ, msg, s.spid, &s.packetID)
}

func writePackets(w io.Writer, typ byte, msg []byte, spid uint16, id *byte) error {
	const max = 4096 - 8
	var out bytes.Buffer
	for first := true; first || len(msg) > 0; first = false {
		chunk := msg[:min(len(msg), max)]
		msg = msg[len(chunk):]
		status := byte(0)
		if len(msg) == 0 {
			status = 0x01
		}
		*id++
		out.Write([]byte{typ, status})
		out.Write(binary.BigEndian.AppendUint16(nil, uint16(len(chunk)+8)))
		out.Write(binary.BigEndian.AppendUint16(nil, spid))
		out.Write([]byte{*id, 0})
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
	id          *byte
	pending     []byte
	passthrough bool
}

// NewHandshakeConn wraps c; id is the packet counter shared with the
// session's other messages.
func NewHandshakeConn(c net.Conn, spid uint16, id *byte) *HandshakeConn {
	return &HandshakeConn{Conn: c, spid: spid, id: id}
}

// Done makes TLS records flow bare, as they do after the handshake.
func (h *HandshakeConn) Done() { h.passthrough = true }

func (h *HandshakeConn) Read(p []byte) (int, error) {
	if h.passthrough {
		return h.Conn.Read(p)
	}
	for len(h.pending) == 0 {
		var hdr [8]byte
		if _, err := io.ReadFull(h.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if n < 8 {
			return 0, fmt.Errorf("bad packet length %d", n)
		}
		h.pending = make([]byte, n-8)
		if _, err := io.ReadFull(h.Conn, h.pending); err != nil {
			return 0, err
		}
	}
	n := copy(p, h.pending)
	h.pending = h.pending[n:]
	return n, nil
}

func (h *HandshakeConn) Write(p []byte) (int, error) {
	if h.passthrough {
		return h.Conn.Write(p)
	}
	if err := writePackets(h.Conn, packPrelogin, p, h.spid, h.id); err != nil {
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

// sqlText skips ALL_HEADERS and decodes the batch text.
func sqlText(b []byte) string {
	if len(b) >= 4 {
		if n := int(binary.LittleEndian.Uint32(b)); n >= 4 && n <= len(b) {
			b = b[n:]
		}
	}
	return fromUCS2(b)
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

// ForScenario maps a harness set-up onto the test server: no TLS answers
// ENCRYPT_NOT_SUP, TLS forced ENCRYPT_REQ, otherwise TLS is optional; a
// version list limits the server to TLS 1.0/1.1 (S7).
func ForScenario(t testenv.TLS, user, password string) (Config, error) {
	c := Config{Encrypt: EncryptOff, User: user, Password: password}
	if t.Off {
		c.Encrypt = EncryptNotSup
		return c, nil
	}
	if t.Force {
		c.Encrypt = EncryptReq
	}
	cert, err := tls.LoadX509KeyPair(t.Cert.Cert, t.Cert.Key)
	if err != nil {
		return Config{}, err
	}
	c.Cert = &cert
	if t.Versions != "" {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	}
	return c, nil
}
