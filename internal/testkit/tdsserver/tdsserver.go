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
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	packRPC      = 0x03
	packReply    = 0x04
	packAttn     = 0x06
	packBulk     = 0x07
	packTransMgr = 0x0E
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
	addr     string
	listenOn func(network, addr string) (net.Listener, error)

	// thawed is closed when a Freeze ends; nil while not frozen.
	freezeMu sync.Mutex
	thawed   chan struct{}

	mu   sync.Mutex
	cfg  Config
	run  *run // the listener now serving; nil when stopped
	spid atomic.Uint32
	// sessions are the connected ones, by session ID, for
	// sys.dm_exec_connections.
	sessions map[uint16]*session

	// writes is the one table, kept across restarts like a database's data:
	// INSERT INTO writes (id) VALUES (n) appends, SELECT id FROM writes reads.
	dataMu sync.Mutex
	writes []int64
}

// Start listens on a free loopback port with cfg.
func Start(cfg Config) (*Server, error) { return StartOn(cfg, net.Listen, "127.0.0.1:0") }

// StartOn is Start listening with listen at addr: a test host's Listen
// serves the server from that host (see netns).
func StartOn(cfg Config, listen func(network, addr string) (net.Listener, error), addr string) (*Server, error) {
	l, err := listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{addr: l.Addr().String(), cfg: cfg, sessions: map[uint16]*session{}, listenOn: listen}
	if err := s.serve(l); err != nil {
		return nil, err
	}
	return s, nil
}

// Freeze stops answering requests, as a server process stopped by SIGSTOP
// does: its connections stay open and the kernel still acknowledges what
// clients send, but nothing is answered until Thaw.
func (s *Server) Freeze() error {
	s.freezeMu.Lock()
	defer s.freezeMu.Unlock()
	if s.thawed == nil {
		s.thawed = make(chan struct{})
	}
	return nil
}

// Thaw undoes Freeze: the requests waiting are answered.
func (s *Server) Thaw() error {
	s.freezeMu.Lock()
	defer s.freezeMu.Unlock()
	if s.thawed != nil {
		close(s.thawed)
		s.thawed = nil
	}
	return nil
}

// waitThawed blocks while the server is frozen.
func (s *Server) waitThawed() {
	s.freezeMu.Lock()
	ch := s.thawed
	s.freezeMu.Unlock()
	if ch != nil {
		<-ch
	}
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
	l, err := s.listenOn("tcp", s.addr)
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
			s.mu.Lock()
			s.sessions[sess.spid] = sess
			s.mu.Unlock()
			sess.info.Err = sess.serve()
			s.mu.Lock()
			delete(s.sessions, sess.spid)
			s.mu.Unlock()
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

// sessionsNow returns the connected sessions in session ID order.
func (s *Server) sessionsNow() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, o := range s.sessions {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b *session) int { return int(a.spid) - int(b.spid) })
	return out
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
