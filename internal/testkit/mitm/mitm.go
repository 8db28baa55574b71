// Package mitm is a man-in-the-middle test proxy: it sits between a client
// and a real server and attacks the connection the way an attacker on the
// network path could: strip TLS, present its own certificate, present a
// valid certificate for another host, offer only TLS 1.0, cut the handshake,
// stall, or flood the client with an endless handshake. It records what the
// attacker could read, so tests can assert that a mode's promise held: no
// credential in the clear, no session the attacker can read. Test code only.
package mitm

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
)

// Engine selects how the proxy finds the TLS start in the protocol.
type Engine int

const (
	MySQL Engine = iota // TLS after the server greeting and an SSLRequest packet
	TDS                 // TLS inside PRELOGIN packets after the PRELOGIN exchange
	Redis               // TLS wraps the whole connection
	Mongo               // TLS wraps the whole connection
)

// Attack is what the proxy does to each connection.
type Attack int

const (
	// Relay passes bytes through unchanged.
	Relay Attack = iota
	// StripTLS makes the server look as if it had no TLS: MySQL's greeting
	// loses CLIENT_SSL, TDS's PRELOGIN answer says ENCRYPT_NOT_SUP, and for
	// Redis and MongoDB the proxy closes a ClientHello like a plaintext
	// server and relays plaintext to the server over TLS.
	StripTLS
	// ForeignCA terminates TLS with Config.Cert (from another CA) and
	// relays the decrypted stream.
	ForeignCA
	// OtherHost terminates TLS with Config.Cert, valid from the right CA
	// but for another host name.
	OtherHost
	// TLS10 terminates TLS offering nothing newer than TLS 1.0.
	TLS10
	// CutHandshake relays until the TLS handshake has started, then cuts
	// both connections after the server's first bytes.
	CutHandshake
	// Stall accepts and reads but never answers.
	Stall
	// LongChain terminates TLS with Config.Cert, a valid certificate sent
	// with a long chain (hundreds of KiB, under crypto/tls's limit).
	LongChain
	// HugeChain is LongChain over the limit of a certificate message.
	HugeChain
	// Flood answers the TLS start with a handshake message that claims to
	// be 16 MiB long, then sends zeros until the client hangs up.
	Flood
)

func (a Attack) String() string {
	return [...]string{"passive relay", "strip TLS", "certificate from another CA", "certificate for another host",
		"TLS 1.0 only", "cut mid-handshake", "stall", "long chain", "huge chain", "flood"}[a]
}

// intercepts says whether the attack terminates the client's TLS itself.
func (a Attack) intercepts() bool {
	switch a {
	case ForeignCA, OtherHost, TLS10, LongChain, HugeChain:
		return true
	}
	return false
}

// Config is one proxy.
type Config struct {
	Engine      Engine
	Attack      Attack
	Upstream    string           // the real server
	UpstreamTLS bool             // Redis, Mongo: Upstream's port speaks TLS
	Cert        *tls.Certificate // what the intercepting attacks present
}

// Time limits of the proxy.
const (
	// StopTimeout bounds how long Stop (and Close) wait for the connection
	// handlers to end once every connection is closed: milliseconds, unless
	// one is stuck.
	StopTimeout = 10 * time.Second
	// dialTimeout bounds connecting to the upstream server.
	dialTimeout = 10 * time.Second
	// handshakeTimeout bounds the proxy's TLS handshakes, either side.
	handshakeTimeout = 10 * time.Second
)

// Proxy is a running proxy.
type Proxy struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup // the accept loop and the handlers; Add only under mu while !closed

	mu          sync.Mutex
	seen        bytes.Buffer // client bytes the attacker could read
	intercepted int          // TLS sessions the client accepted from the proxy
	flooded     int64        // bytes sent by Flood
	active      map[net.Conn]struct{}
	upstream    map[net.Conn]struct{} // connections to the server, closed by Stop too
	closed      bool
	tlsUpstream string // see SetTLSUpstream
}

// Start listens on a free loopback port.
func Start(cfg Config) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, ln: ln, active: map[net.Conn]struct{}{}, upstream: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Seen returns every client byte the attacker could read: plaintext, or
// the inside of a TLS session the client accepted from the proxy.
func (p *Proxy) Seen() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.seen.Bytes())
}

// Intercepted counts TLS sessions in which the client accepted the proxy's
// certificate.
func (p *Proxy) Intercepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.intercepted
}

// Flooded is how many bytes Flood sent.
func (p *Proxy) Flooded() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flooded
}

// Active counts client connections still open: after a client's Close it
// must come back to zero.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.active)
}

// Reset forgets what was seen and intercepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen.Reset()
	p.intercepted, p.flooded = 0, 0
}

// Stop stops the proxy: it closes the listener and every connection
// through it, client and server side, and waits for the handlers to end,
// at most StopTimeout; then it returns an error saying how many are left.
// Stopping a stopped proxy only waits again.
func (p *Proxy) Stop() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.active {
		c.Close()
	}
	for c := range p.upstream {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		p.mu.Lock()
		n := len(p.active)
		p.mu.Unlock()
		return fmt.Errorf("%s: %d connection handler(s) still running %v after Stop", p, n, StopTimeout)
	}
}

// Close is Stop for t.Cleanup and defer: a Stop error, a stuck handler, is
// reported on standard error.
func (p *Proxy) Close() {
	if err := p.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "mitm:", err)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		// Register and count the handler under the lock Stop takes to set
		// closed: Stop either sees the connection and closes it, or the
		// connection sees closed and is closed here; no wg.Add follows
		// Stop's Wait.
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.active[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer p.forget(c)
			p.handle(c)
		}()
	}
}

func (p *Proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.active, c)
	p.mu.Unlock()
}

// dial connects to the server. The connection is closed by Stop, or by
// the returned release, which the handler defers.
func (p *Proxy) dial() (net.Conn, func(), error) { return p.dialAddr(p.cfg.Upstream) }

func (p *Proxy) dialAddr(addr string) (net.Conn, func(), error) {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return nil, nil, net.ErrClosed
	}
	p.upstream[c] = struct{}{}
	p.mu.Unlock()
	return c, func() {
		c.Close()
		p.mu.Lock()
		delete(p.upstream, c)
		p.mu.Unlock()
	}, nil
}

func (p *Proxy) handle(client net.Conn) {
	switch p.cfg.Attack {
	case Stall:
		io.Copy(io.Discard, client)
		return
	}
	p.mu.Lock()
	dual := p.tlsUpstream
	p.mu.Unlock()
	if dual != "" {
		p.dual(client, dual)
		return
	}
	switch p.cfg.Engine {
	case MySQL:
		p.mysql(client)
	case TDS:
		p.tds(client)
	default:
		p.wholeTLS(client)
	}
}

// serverTLS is the proxy's side of an intercepted session.
func (p *Proxy) serverTLS() *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{*p.cfg.Cert}}
	if p.cfg.Attack == TLS10 {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	}
	return c
}

// intercept completes a TLS handshake with the client on rw (which carries
// the records) and reports whether the client accepted it.
func (p *Proxy) intercept(rw net.Conn) (*tls.Conn, bool) {
	tc := tls.Server(rw, p.serverTLS())
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, false
	}
	// The client may still reject the certificate after the server's
	// Finished (TLS 1.3): it proves acceptance by sending application data.
	_ = tc.SetDeadline(time.Time{})
	return tc, true
}

func (p *Proxy) countIntercept() {
	p.mu.Lock()
	p.intercepted++
	p.mu.Unlock()
}

// upstreamTLS dials the server over TLS without checking anything: the
// attacker does not care who the server is.
func upstreamTLS(c net.Conn) (*tls.Conn, error) {
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return tc, err
	}
	return tc, c.SetDeadline(time.Time{})
}

// relay copies both ways until either side ends, recording what the client
// sent when the attacker can read it.
func (p *Proxy) relay(client, server net.Conn, readable bool) {
	var once sync.Once
	done := make(chan struct{})
	stop := func() { once.Do(func() { client.Close(); server.Close(); close(done) }) }
	go func() {
		var w io.Writer = server
		if readable {
			w = io.MultiWriter(seenWriter{p}, server) // seen first: the reply cannot overtake it
		}
		io.Copy(w, client)
		stop()
	}()
	io.Copy(client, server)
	stop()
	<-done
}

// interceptedRelay waits for the client's first bytes inside the session
// before counting it as intercepted: a client that rejects the certificate
// after the handshake sends an alert or nothing, never application data.
func (p *Proxy) interceptedRelay(client *tls.Conn, server net.Conn) {
	br := bufio.NewReader(client)
	if _, err := br.Peek(1); err != nil {
		server.Close()
		return
	}
	p.countIntercept()
	p.relay(&readConn{Conn: client, r: br}, server, true)
}

type seenWriter struct{ p *Proxy }

func (s seenWriter) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.seen.Len() < 1<<20 {
		s.p.seen.Write(b)
	}
	return len(b), nil
}

type readConn struct {
	net.Conn
	r io.Reader
}

func (c *readConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// cut relays raw bytes until the server has sent n bytes, then closes both.
func (p *Proxy) cut(client, server net.Conn, n int64) {
	go func() { io.Copy(server, client); server.Close() }()
	io.CopyN(client, server, n)
	client.Close()
	server.Close()
}

// floodRecord is a TLS handshake record whose message claims 16 MiB.
var floodRecord = []byte{0x16, 0x03, 0x03, 0x40, 0x00, 0x02, 0xFF, 0xFF, 0xFF}

// flood writes floodRecord, then zeros. frame wraps each chunk once, up
// front (TDS: in PRELOGIN packets), so the proxy itself allocates nothing
// per write and the client's allocations can be measured in-process.
func (p *Proxy) flood(w io.Writer, frame func([]byte) []byte) {
	zeros := make([]byte, 32<<10)
	first := floodRecord
	if frame != nil {
		first, zeros = frame(floodRecord), frame(zeros[:4096-8])
	}
	if _, err := w.Write(first); err != nil {
		return
	}
	for sent := int64(0); sent < 256<<20; {
		n, err := w.Write(zeros)
		sent += int64(n)
		p.mu.Lock()
		p.flooded += int64(n)
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

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
		p.relay(client, up, !p.cfg.UpstreamTLS)
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
		p.relay(&readConn{Conn: client, r: br}, up, true)
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
				p.relay(rc, up, true)
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
		seenWriter{p}.Write(resp)
		p.relay(client, up, true)
		return
	}
	switch p.cfg.Attack {
	case Relay, StripTLS:
		p.relay(client, up, false)
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
			var id byte
			tdsserver.NewHandshakeConn(nopConn{&buf}, 0, &id).Write(b)
			return buf.Bytes()
		})
		return
	}
	if _, err := client.Write(answer); err != nil {
		return
	}
	switch {
	case intercepting:
		var id byte
		hc := tdsserver.NewHandshakeConn(client, 0, &id)
		tc, ok := p.intercept(hc)
		if !ok {
			return
		}
		hc.Done()
		p.interceptedRelay(tc, up)
	case p.cfg.Attack == CutHandshake && asked != int(tdsserver.EncryptNotSup):
		p.cut(client, up, 60)
	default:
		p.relay(client, up, p.cfg.Attack == StripTLS || asked == int(tdsserver.EncryptNotSup))
	}
}

// nopConn is a net.Conn that only writes, to frame bytes in memory.
type nopConn struct{ w io.Writer }

func (c nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c nopConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c nopConn) Close() error                     { return nil }
func (c nopConn) LocalAddr() net.Addr              { return nil }
func (c nopConn) RemoteAddr() net.Addr             { return nil }
func (c nopConn) SetDeadline(time.Time) error      { return nil }
func (c nopConn) SetReadDeadline(time.Time) error  { return nil }
func (c nopConn) SetWriteDeadline(time.Time) error { return nil }

// String describes the proxy for test names.
func (p *Proxy) String() string { return fmt.Sprintf("mitm(%s → %s)", p.cfg.Attack, p.cfg.Upstream) }

// SetTLSUpstream makes a Relay proxy an endpoint that serves TLS and
// plaintext on one port, as managed endpoints do: a new connection that
// opens with a TLS handshake record goes to tlsAddr (a TLS port), any other
// to Upstream. Empty: every connection goes to Upstream again.
func (p *Proxy) SetTLSUpstream(tlsAddr string) {
	p.mu.Lock()
	p.tlsUpstream = tlsAddr
	p.mu.Unlock()
}

func (p *Proxy) dual(client net.Conn, tlsAddr string) {
	var first [1]byte
	_ = client.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if _, err := io.ReadFull(client, first[:]); err != nil {
		return
	}
	_ = client.SetReadDeadline(time.Time{})
	addr := p.cfg.Upstream
	if first[0] == 0x16 {
		addr = tlsAddr
	}
	up, release, err := p.dialAddr(addr)
	if err != nil {
		return
	}
	defer release()
	if _, err := up.Write(first[:]); err != nil {
		return
	}
	p.relay(client, up, false)
}
