// Package mitm is a man-in-the-middle test proxy: it sits between a client
// and a real server and attacks the connection the way an attacker on the
// network path could: strip TLS, present its own certificate, present a
// valid certificate for another host, offer only TLS 1.0, cut the handshake,
// stall, or flood the client with an endless handshake. It records every
// byte the client sends as it crosses the network (Wire), whatever the
// proxy believes about TLS, and what it decrypts from the sessions the
// client accepted from it (Seen), so tests can assert that a mode's promise
// held: no credential in the clear, no session the attacker can read. Test
// code only.
package mitm

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
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
	wire        bytes.Buffer // every byte the client sent, as it crossed the network
	inside      bytes.Buffer // what the client sent inside TLS sessions it accepted from the proxy
	dropped     int64        // bytes past maxRecord, not recorded
	intercepted int          // TLS sessions the client accepted from the proxy
	flooded     int64        // bytes sent by Flood
	active      map[net.Conn]struct{}
	upstream    map[net.Conn]struct{} // connections to the server, closed by Stop too
	closed      bool
	tlsUpstream string        // see SetTLSUpstream
	plainDelay  time.Duration // see SetPlainDelay
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

// Wire returns every byte the client sent, as it crossed the network: the
// proxy records them where it reads them from the client, whatever the
// protocol, the attack or what the proxy believes about TLS. A session
// that is encrypted shows TLS records here; one that only encrypts its
// login (TDS's ENCRYPT_OFF) shows its later queries in plaintext.
func (p *Proxy) Wire() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.wire.Bytes())
}

// Seen returns every client byte the attacker could read: Wire, followed
// by the inside of the TLS sessions the client accepted from the proxy.
func (p *Proxy) Seen() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(bytes.Clone(p.wire.Bytes()), p.inside.Bytes()...)
}

// Dropped counts client bytes not recorded because a record was full
// (maxRecord): a check on Wire or Seen is only complete when it is zero.
func (p *Proxy) Dropped() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// maxRecord bounds each record (Wire, and the inside of intercepted
// sessions): far more than a test's connections send.
const maxRecord = 16 << 20

// recorder appends what is written to one of the proxy's records.
type recorder struct {
	p   *Proxy
	buf *bytes.Buffer
}

func (r recorder) Write(b []byte) (int, error) {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	n := min(len(b), maxRecord-r.buf.Len())
	r.buf.Write(b[:n])
	r.p.dropped += int64(len(b) - n)
	return len(b), nil
}

// recordConn is the client's connection as the proxy reads it: every byte
// read is recorded in Wire before the proxy does anything with it, so it
// is recorded before the server can answer it.
type recordConn struct {
	net.Conn
	p *Proxy
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		recorder{c.p, &c.p.wire}.Write(b[:n])
	}
	return n, err
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

// Reset forgets what was recorded and intercepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wire.Reset()
	p.inside.Reset()
	p.intercepted, p.flooded, p.dropped = 0, 0, 0
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
			p.handle(&recordConn{Conn: c, p: p})
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

// SetPlainDelay makes an endpoint of SetTLSUpstream answer plaintext d
// late: a plaintext connection's first bytes reach Upstream after d.
func (p *Proxy) SetPlainDelay(d time.Duration) {
	p.mu.Lock()
	p.plainDelay = d
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
	} else {
		p.mu.Lock()
		d := p.plainDelay
		p.mu.Unlock()
		time.Sleep(d)
	}
	up, release, err := p.dialAddr(addr)
	if err != nil {
		return
	}
	defer release()
	if _, err := up.Write(first[:]); err != nil {
		return
	}
	p.relay(client, up)
}
