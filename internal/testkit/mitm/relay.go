package mitm

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

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

// relay copies both ways until either side ends. What the client sends
// is recorded where it is read: client is the recording connection, or the
// inside of an intercepted session.
func (p *Proxy) relay(client, server net.Conn) {
	var once sync.Once
	done := make(chan struct{})
	stop := func() { once.Do(func() { client.Close(); server.Close(); close(done) }) }
	go func() {
		io.Copy(server, client)
		stop()
	}()
	io.Copy(client, server)
	stop()
	<-done
}

// interceptedRelay waits for the client's first bytes inside the session
// before counting it as intercepted: a client that rejects the certificate
// after the handshake sends an alert or nothing, never application data.
// What the client sends inside the session is recorded as read.
func (p *Proxy) interceptedRelay(client *tls.Conn, server net.Conn) {
	br := bufio.NewReader(io.TeeReader(client, recorder{p, &p.inside}))
	if _, err := br.Peek(1); err != nil {
		server.Close()
		return
	}
	p.countIntercept()
	p.relay(&readConn{Conn: client, r: br}, server)
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
