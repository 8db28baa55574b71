package sslconn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialFunc dials one plain connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

const (
	// firstByteTimeout is how long a handshake waits for the server's first
	// byte: a TLS server answers a ClientHello within a round trip, while
	// Redis on its plaintext port never answers one at all.
	firstByteTimeout = 3 * time.Second
	// plainProbeTimeout replaces it at an address already seen to answer TLS
	// with silence, so PREFERRED there costs each new connection this much.
	plainProbeTimeout = 300 * time.Millisecond
	// plainHintTTL is how long that observation is trusted.
	plainHintTTL = time.Minute
	// dialTimeout bounds one TCP connect within the retry loop.
	dialTimeout = 10 * time.Second
)

// Dial connects to addr in the configured mode for engines where TLS wraps
// the whole connection (Redis, MongoDB), retrying refused connections with
// backoff within the retry budget and ctx. DISABLED dials plaintext; the other
// modes run a TLS handshake verified per mode. PREFERRED falls back to
// plaintext, on a new connection, only when the server does not speak TLS
// there: it answers the ClientHello in plaintext, closes the connection, or
// stays silent; a handshake that starts and fails is an error, never a
// downgrade. Errors are classified (see Classify) and name addr. dial may be
// nil for a net.Dialer.
//
// The connection returned is a *Conn.
func (c *Config) Dial(ctx context.Context, network, addr string, dial DialFunc) (net.Conn, error) {
	var conn net.Conn
	err := c.Retry(ctx, addr, func(ctx context.Context) error {
		var err error
		conn, err = c.DialMode(ctx, c.mode, network, addr, dial)
		return err
	})
	return conn, err
}

// DialMode makes one connection attempt in the given mode, without retrying.
func (c *Config) DialMode(ctx context.Context, mode Mode, network, addr string, dial DialFunc) (net.Conn, error) {
	if dial == nil {
		d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if mode == Disabled {
		return c.wrap(raw, raw, nil, mode, network, addr, dial), nil
	}
	tc, asked, err := c.handshake(ctx, mode, raw, addr)
	if err == nil {
		w := c.wrap(tc, raw, tc, mode, network, addr, dial)
		w.certAsked = asked && c.clientCert == nil
		return w, nil
	}
	if mode == Preferred && errors.Is(err, ErrServerNoTLS) {
		c.log.Debug("sslconn: server does not speak TLS here; PREFERRED falls back to plaintext", "addr", addr)
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.wrap(raw, raw, nil, mode, network, addr, dial), nil
	}
	return nil, err
}

// plainHints remembers addresses whose servers answered TLS with silence.
var plainHints sync.Map // addr -> time.Time

// Handshake runs a client TLS handshake over raw for the given mode and host,
// bounded by the handshake timeout and ctx. It closes raw on failure. A
// server that answers in plaintext, closes, or sends nothing at all yields
// ErrServerNoTLS.
func (c *Config) Handshake(ctx context.Context, mode Mode, raw net.Conn, addr string) (*tls.Conn, error) {
	tc, _, err := c.handshake(ctx, mode, raw, addr)
	return tc, err
}

// handshake is Handshake, also reporting whether the server asked for a
// client certificate.
func (c *Config) handshake(ctx context.Context, mode Mode, raw net.Conn, addr string) (*tls.Conn, bool, error) {
	first := firstByteTimeout
	if t, ok := plainHints.Load(addr); ok && time.Since(t.(time.Time)) < plainHintTTL {
		first = plainProbeTimeout
	}
	first = min(first, c.handshakeTimeout)
	cr := &countingConn{Conn: raw}
	_ = raw.SetReadDeadline(time.Now().Add(first))
	tc := tls.Client(cr, c.TLSConfigMode(mode, addr))
	asked := new(atomic.Bool)
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, certAskedKey{}, asked), c.handshakeTimeout)
	defer cancel()
	err := tc.HandshakeContext(hctx)
	if err == nil {
		_ = raw.SetReadDeadline(time.Time{})
		plainHints.Delete(addr)
		return tc, asked.Load(), nil
	}
	raw.Close()
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	if cr.read.Load() == 0 && (isTimeout(err) || errors.Is(hctx.Err(), context.DeadlineExceeded)) {
		plainHints.Store(addr, time.Now())
		return nil, false, NewError(ErrServerNoTLS, mode, addr, "no answer to the TLS ClientHello within "+first.String(), err)
	}
	if cr.read.Load() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return nil, false, NewError(ErrServerNoTLS, mode, addr, "server closed the connection on the TLS ClientHello", err)
	}
	cerr := Classify(err, mode, addr)
	var local *Error
	if asked.Load() && c.clientCert == nil && (!errors.As(cerr, &local) || errors.Is(cerr, ErrTLSVersion) || errors.Is(cerr, ErrClientCertRequired)) {
		// The server asked for a certificate, got none, and ended the
		// handshake: whatever alert it chose, that is the cause.
		return nil, true, errCertAsked(mode, addr, err)
	}
	return nil, asked.Load(), cerr
}

func errCertAsked(mode Mode, addr string, err error) error {
	return NewError(ErrClientCertRequired, mode, addr, "the server asked for a client certificate and none is configured", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingConn counts the bytes the server sent during the handshake, to
// tell "no answer" from a handshake that started, and lifts the first-byte
// deadline once the server has answered.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.read.Add(int64(n)) == int64(n) {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	return n, err
}

// Conn is a connection made by Dial. It reports its TLS state, and turns
// the errors of its first read into sslconn's errors: a server that ends a
// TLS 1.3 connection because it wanted a client certificate
// (ErrClientCertRequired), or a plaintext connection reset by a port that
// speaks only TLS (ErrServerRequiresTLS: Redis resets it without a word).
type Conn struct {
	net.Conn
	raw     net.Conn // the TCP connection under any TLS
	peer    *PeerCheck
	tls     *tls.Conn
	cfg     *Config
	mode    Mode
	network string
	addr    string
	dial    DialFunc
	read    atomic.Bool
	key     string
	// certAsked: the server asked for a client certificate and got none.
	// Under TLS 1.3 it says so only after the handshake, by ending the
	// connection at the first read or write.
	certAsked bool
}

// conns indexes live Conns by their local address, so an adapter can find
// the connection the server describes (Redis CLIENT INFO, say).
var conns sync.Map // local addr -> *Conn

func (c *Config) wrap(nc, raw net.Conn, tc *tls.Conn, mode Mode, network, addr string, dial DialFunc) *Conn {
	w := &Conn{Conn: nc, raw: raw, peer: NewPeerCheck(raw), tls: tc, cfg: c, mode: mode, network: network, addr: addr, dial: dial}
	if la := nc.LocalAddr(); la != nil {
		w.key = la.String()
		conns.Store(w.key, w)
	}
	return w
}

// LookupConn returns the live Conn made by Dial whose local address is
// localAddr ("127.0.0.1:53412"), if any.
func LookupConn(localAddr string) (*Conn, bool) {
	v, ok := conns.Load(localAddr)
	if !ok {
		return nil, false
	}
	return v.(*Conn), true
}

// Status returns the connection's TLS state.
func (c *Conn) Status() Status {
	if c.tls == nil {
		return Status{}
	}
	cs := c.tls.ConnectionState()
	return StatusOf(&cs)
}

// ConnectionState returns the TLS state, and false for a plaintext connection.
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// Mode returns the mode the connection was made in.
func (c *Conn) Mode() Mode { return c.mode }

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.peer.Received(n)
		c.read.Store(true)
	} else if err != nil && !c.read.Load() {
		err = c.firstError(err)
	}
	return n, err
}

// Write refuses to write into a connection the server has already closed
// (a restart): the request is then known not to have been sent, and the
// error matches ErrNotSent, so the caller may retry it safely. Without this
// check the bytes would go out, and the outcome would be unknown.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.peer.Closed(); err != nil {
		werr := NotSent(c, err)
		if !c.read.Load() {
			// Closed before its first answer: say why, if we can tell.
			werr = c.firstError(werr)
		}
		return 0, werr
	}
	n, err := c.Conn.Write(p)
	if err != nil && !c.read.Load() {
		err = c.firstError(err)
	}
	return n, err
}

func (c *Conn) Close() error {
	if c.key != "" {
		conns.CompareAndDelete(c.key, c)
	}
	return c.Conn.Close()
}

// firstError explains an error on a read or write of a connection the
// server has not yet said a word on.
func (c *Conn) firstError(err error) error {
	if c.tls != nil && c.certAsked && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || kindOf(err) != nil) {
		return errCertAsked(c.mode, c.addr, err)
	}
	if c.tls != nil {
		if cerr := Classify(err, c.mode, c.addr); cerr != err {
			return cerr
		}
		return err
	}
	if !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return err
	}
	// The server dropped a plaintext connection before a word: if the port
	// speaks TLS, that is why.
	ctx, cancel := context.WithTimeout(context.Background(), firstByteTimeout)
	defer cancel()
	raw, derr := c.dial(ctx, c.network, c.addr)
	if derr != nil {
		return err
	}
	tc, herr := c.cfg.Handshake(ctx, Required, raw, c.addr)
	if herr != nil && (errors.Is(herr, ErrServerNoTLS) || !isTLSAnswer(herr)) {
		return err
	}
	if tc != nil {
		tc.Close()
	}
	return NewError(ErrServerRequiresTLS, c.mode, c.addr, "the server dropped the plaintext connection and answers TLS on this port", err)
}

// isTLSAnswer reports whether a failed handshake still shows a TLS server
// (it answered in TLS before failing, e.g. asking for a client certificate).
func isTLSAnswer(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind != ErrServerNoTLS
}

// ErrNotSent matches errors for requests that were never sent because the
// server had already closed the connection: retrying them cannot apply
// anything twice.
var ErrNotSent = errors.New("connection closed by the server; request not sent")

// ErrOutcomeUnknown matches errors for requests that were sent on a
// connection that then failed (end of stream, reset, read timeout) before the
// answer came: the server may or may not have executed them, so they must
// not be re-sent silently.
var ErrOutcomeUnknown = errors.New("connection lost after the request was sent; outcome unknown")

// OutcomeUnknown marks err as ErrOutcomeUnknown. The mark hides err's chain
// from errors.Is and errors.As (its text stays): drivers that re-send a
// request after io.EOF or a timeout (go-redis's cluster client does, whatever
// MaxRetries says) then report it instead.
func OutcomeUnknown(err error) error { return &outcomeUnknownError{err} }

type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string { return ErrOutcomeUnknown.Error() + ": " + e.err.Error() }
func (e *outcomeUnknownError) Unwrap() error { return ErrOutcomeUnknown }

// NotSent is the write error for a connection whose server closed it
// (cause, e.g. from PeerClosed) before the request went out; it matches
// ErrNotSent and cause.
func NotSent(conn net.Conn, cause error) error {
	return &net.OpError{Op: "write", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: &notSentError{cause}}
}

type notSentError struct{ cause error }

func (e *notSentError) Error() string   { return ErrNotSent.Error() + ": " + e.cause.Error() }
func (e *notSentError) Unwrap() []error { return []error{ErrNotSent, e.cause} }

// PeerClosed reports, without blocking or consuming anything, whether the
// server has closed or reset a TCP connection: io.EOF or ECONNRESET, or nil
// while it looks alive (or cannot be checked). On Linux it reads the
// kernel's TCP state; elsewhere it peeks. For a check before every write,
// keep a PeerCheck instead.
func PeerClosed(conn net.Conn) error { return NewPeerCheck(conn).Closed() }

// PeerCheck is PeerClosed for one connection, made once and asked before
// every write: on Linux it allocates nothing per call (one getsockopt). A
// connection that delivered data in the last RecentRead (see Received) is
// taken as alive without asking: back-to-back operations then cost nothing,
// and a FIN landing in that window is the same race as one landing just
// after the check; the check is for connections that sat idle in a pool
// while the server restarted.
type PeerCheck struct {
	conn     net.Conn
	probe    *peerProbe
	lastRead atomic.Int64 // since epoch, ns; 0: never
}

// RecentRead is how fresh a read must be for PeerCheck to skip the kernel.
const RecentRead = 50 * time.Microsecond

// epoch makes PeerCheck's timestamps monotonic.
var epoch = time.Now()

// Received records a read that returned n bytes.
func (p *PeerCheck) Received(n int) {
	if n > 0 {
		p.lastRead.Store(int64(time.Since(epoch)))
	}
}

// NewPeerCheck prepares the check for conn, a TCP connection.
func NewPeerCheck(conn net.Conn) *PeerCheck { return &PeerCheck{conn: conn, probe: newPeerProbe(conn)} }

// Closed is PeerClosed(conn), or nil right after a read.
func (p *PeerCheck) Closed() error {
	if last := p.lastRead.Load(); last != 0 && time.Since(epoch)-time.Duration(last) < RecentRead {
		return nil
	}
	if err, known := p.probe.closed(); known {
		return err
	}
	sc, ok := p.conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var closed error
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && err == nil:
			closed = io.EOF
		case errors.Is(err, syscall.ECONNRESET):
			closed = syscall.ECONNRESET
		}
		return true
	})
	return closed
}
