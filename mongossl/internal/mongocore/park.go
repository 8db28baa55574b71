package mongocore

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect opens a connection of its own before it hands the client over,
// so that an error retrying cannot fix comes back at once, typed, instead
// of as a server-selection timeout. The driver's monitor then dials the
// same seed: on a connection of its own, that cost a new client a TCP
// handshake, a TLS handshake and a hello more than the bare driver (2
// round trips in plaintext, 3 with TLS). So the preflight's connection is
// parked instead, TCP and TLS done and nothing sent: the driver's first
// dial to that address gets it and says its own hello on it, the first
// the server sees there (compression, speculative authentication: the
// handshake is the driver's). Its first answer, or the error of its first
// read or write (a TLS 1.3 server wanting a client certificate, a TLS
// port dropping plaintext), is what Connect waits for and returns. A
// hostile server meets one handshake, as before: the driver dials only
// once the preflight's has succeeded.
//
// Parking lasts until Connect returns: a connection no dial took by then
// is closed, so none is handed to a later dial, nor after Disconnect. When
// Connect fails, the client's connections are closed and its dials refused
// until Connect has disconnected it: its monitor may have dialed again,
// and Disconnect waits for a monitor in a dial.

// Parking holds the preflight's connections for the driver's first dials,
// one per seed address, until Wait returns.
type Parking struct {
	mu       sync.Mutex
	conns    map[string]*parkedConn // by the driver's form of the address, until taken
	all      []*parkedConn          // taken or not
	dialed   []net.Conn             // the driver's other dials, while Wait waits
	done     bool                   // Wait succeeded: the client is the driver's
	failed   error                  // Connect failed: dials are refused
	results  chan error             // each parked connection's first answer (nil) or error
	deadline time.Time              // for the first answer
}

// Park dials the seeds in parallel, TCP and TLS only, and parks each
// connection made for the driver's first dial to its address. It fails as
// Preflight does, when no seed could be reached; it returns nil for no
// hosts (mongodb+srv: the driver resolves them).
func Park(ctx context.Context, d *Dialer, hosts []string) (*Parking, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	p := &Parking{conns: map[string]*parkedConn{}, results: make(chan error, len(hosts)), deadline: answerDeadline(ctx, d)}
	err := preflight(ctx, hosts, func(ctx context.Context, h string) error {
		c, err := d.DialContext(ctx, "tcp", h)
		if err != nil {
			return err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, dup := p.conns[canonical(h)]; dup {
			c.Close()
			return nil
		}
		pc := &parkedConn{Conn: c, p: p, addr: h}
		p.conns[canonical(h)] = pc
		p.all = append(p.all, pc)
		return nil
	})
	if err != nil {
		p.Fail(err)
		return nil, err
	}
	d.park.Store(p)
	return p, nil
}

// answerDeadline is when a server must have answered: ctx's deadline, or
// the handshake timeout from now.
func answerDeadline(ctx context.Context, d *Dialer) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d.Cfg.Settings().HandshakeTimeout)
}

// take returns the connection parked for addr, once; or the error that
// refuses dials.
func (p *Parking) take(network, addr string) (*parkedConn, error) {
	if p == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return nil, p.failed
	}
	if network != "tcp" {
		return nil, nil
	}
	c := p.conns[canonical(addr)]
	delete(p.conns, canonical(addr))
	return c, nil
}

// track keeps c, a connection the driver dialed, while Wait waits, to close
// it if Connect fails.
func (p *Parking) track(c net.Conn) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.failed != nil:
		return p.failed
	case !p.done:
		p.dialed = append(p.dialed, c)
	}
	return nil
}

// errNotAnswered reports a parked connection the driver closed before its
// first answer.
var errNotAnswered = errors.New("connection closed before the server answered")

// Wait waits for the first answer on a parked connection, which the
// driver's first dial took, and returns nil, or, if every parked
// connection failed, the first error, after Fail. The wait is bounded by
// ctx and by the answer's deadline (a taken connection's first read fails
// at it); if no dial took a connection by then, there is nothing to
// report: nil. Connections no dial took are closed.
func (p *Parking) Wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	err := p.wait(ctx)
	if err != nil {
		p.Fail(err)
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	p.dialed = nil
	for addr, c := range p.conns {
		c.Conn.Close()
		delete(p.conns, addr)
	}
	return nil
}

func (p *Parking) wait(ctx context.Context) error {
	// A taken connection fails at the deadline itself; the slack lets its
	// error, not the timer, end the wait.
	t := time.NewTimer(time.Until(p.deadline) + time.Second)
	defer t.Stop()
	var first error
	for range len(p.all) {
		select {
		case err := <-p.results:
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return first
		}
	}
	return first
}

// Fail closes every connection of the client and refuses its dials from
// now on, with err: Connect failed.
func (p *Parking) Fail(err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = err
	for _, c := range p.all {
		c.Conn.Close()
	}
	for _, c := range p.dialed {
		c.Close()
	}
	p.conns, p.all, p.dialed = nil, nil, nil
}

// canonical is addr as the driver writes it (address.Address.String):
// lower case, with MongoDB's default port when none is given.
func canonical(addr string) string {
	addr = strings.ToLower(addr)
	if strings.HasSuffix(addr, ".sock") {
		return addr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(strings.Trim(addr, "[]"), "27017")
	}
	return addr
}

// parkedConn is a parked connection from core's Dial. Until its first
// answer it reports the answer or the error to its Parking, and keeps the
// deadlines the driver sets no later than the answer's deadline, as the
// preflight's own hello did; then it is the connection itself.
type parkedConn struct {
	net.Conn
	p        *Parking
	addr     string
	answered atomic.Bool
	once     sync.Once
}

func (c *parkedConn) report(err error) {
	c.once.Do(func() {
		c.answered.Store(true)
		c.p.results <- err // buffered for every parked connection
	})
}

func (c *parkedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.answered.Load() {
		if n > 0 {
			c.report(c.tlsAlert(b[:n]))
		} else if err != nil {
			c.report(err)
		}
	}
	return n, err
}

// tlsAlert explains a plaintext hello answered with a TLS alert record: a
// port that speaks only TLS, which took the hello for a TLS record (the
// driver's hello can start with a byte that reads as one; the server then
// answers, instead of dropping the connection for core.Conn to explain).
// As a MongoDB reply's header, such bytes would announce a reply of 64 KiB
// or more, which no hello reply is.
func (c *parkedConn) tlsAlert(b []byte) error {
	cc, ok := c.Conn.(*core.Conn)
	if !ok {
		return nil
	}
	if _, encrypted := cc.ConnectionState(); encrypted {
		return nil
	}
	alert := []byte{0x15, 0x03}
	for i, want := range alert {
		if i < len(b) && b[i] != want {
			return nil
		}
	}
	if len(b) > 2 && (b[2] < 1 || b[2] > 4) || len(b) > 3 && b[3] != 0 {
		return nil
	}
	return core.NewError(sslconn.ErrServerRequiresTLS, cc.Mode(), c.addr, "the server answered the plaintext hello with a TLS alert: the port speaks TLS", nil)
}

func (c *parkedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && !c.answered.Load() {
		c.report(err)
	}
	return n, err
}

func (c *parkedConn) Close() error {
	if !c.answered.Load() {
		c.report(errNotAnswered)
	}
	return c.Conn.Close()
}

func (c *parkedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *parkedConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }

func (c *parkedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

func (c *parkedConn) clamp(t time.Time) time.Time {
	if dl := c.p.deadline; !c.answered.Load() && (t.IsZero() || t.After(dl)) {
		return dl
	}
	return t
}
