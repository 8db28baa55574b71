package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sslconn/sslconn/internal/bridge"
	"github.com/sslconn/sslconn/sslconn"
)

const (
	// firstByteTimeout is how long a handshake waits for the server's first
	// byte: a TLS server answers a ClientHello within a round trip, while
	// Redis on its plaintext port never answers one at all. PREFERRED waits
	// this long only for an engine without a plaintext probe (Spec.Probe).
	firstByteTimeout = 3 * time.Second
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
// nil for the Config's dialer (WithDialer, else a net.Dialer).
//
// The connection returned is a *Conn.
func (c *Config) Dial(ctx context.Context, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	var conn net.Conn
	err := c.Retry(ctx, addr, func(ctx context.Context) error {
		var err error
		conn, err = c.DialMode(ctx, c.Mode(), network, addr, dial)
		return err
	})
	return conn, err
}

// DialMode makes one connection attempt in the given mode, without retrying.
func (c *Config) DialMode(ctx context.Context, mode sslconn.Mode, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	dial, configs := c.dialFor(ctx, dial, network, addr)
	if mode == sslconn.Preferred {
		conn, err := c.dialPreferred(ctx, network, addr, dial, configs)
		if w, ok := conn.(*Conn); ok && c.tel != nil {
			noteConn(ctx, w)
		}
		return conn, err
	}
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if mode == sslconn.Disabled {
		w := c.wrap(raw, raw, nil, mode, network, addr, dial)
		if c.tel != nil {
			noteConn(ctx, w)
		}
		return w, nil
	}
	tc, asked, err := c.handshake(ctx, mode, raw, addr)
	if err != nil {
		return nil, err
	}
	w := c.wrap(tc, raw, tc, mode, network, addr, dial)
	w.certAsked = asked && c.s.ClientCert == nil
	if c.tel != nil {
		noteConn(ctx, w)
	}
	return w, nil
}

// handshake runs a client TLS handshake over raw for the given mode and
// host, bounded by the handshake timeout and ctx, and reports whether the
// server asked for a client certificate. It closes raw on failure. A server
// that answers in plaintext, closes, or sends nothing at all yields
// ErrServerNoTLS.
func (c *Config) handshake(ctx context.Context, mode sslconn.Mode, raw net.Conn, addr string) (*tls.Conn, bool, error) {
	return c.handshakeWatched(ctx, mode, raw, addr, nil)
}

// handshakeWatched is handshake, reporting its progress to w (if not nil).
func (c *Config) handshakeWatched(ctx context.Context, mode sslconn.Mode, raw net.Conn, addr string, w *handshakeWatch) (*tls.Conn, bool, error) {
	ctx, span := c.tel.handshake(ctx, mode)
	tc, asked, err := c.handshakeOnce(ctx, mode, raw, addr, w)
	handshaken(span, tc, err)
	return tc, asked, err
}

// handshakeOnce is handshakeWatched's work, without its span.
func (c *Config) handshakeOnce(ctx context.Context, mode sslconn.Mode, raw net.Conn, addr string, w *handshakeWatch) (*tls.Conn, bool, error) {
	first := min(firstByteTimeout, c.s.HandshakeTimeout)
	// Silence is "no TLS here" only from a server that never completed a
	// TLS connection for this Config: one that has (REQUIRED and above
	// connect only over TLS) and is silent now is stalled (frozen,
	// overloaded by a fleet's handshakes after a restart), and gets the
	// whole handshake timeout, as a retryable timeout.
	stalled := mode != sslconn.Preferred && mode != sslconn.Disabled && c.hasAnswered(addr)
	if stalled {
		first = c.s.HandshakeTimeout
	}
	cr := &countingConn{Conn: raw, watch: w}
	_ = raw.SetReadDeadline(time.Now().Add(first))
	tc := tls.Client(cr, c.s.TLSConfig(mode, addr))
	asked := new(atomic.Bool)
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, bridge.CertAskedKey{}, asked), c.s.HandshakeTimeout)
	defer cancel()
	err := tc.HandshakeContext(hctx)
	if err == nil {
		_ = raw.SetReadDeadline(time.Time{})
		return tc, asked.Load(), nil
	}
	raw.Close()
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	if cr.read.Load() == 0 && stalled && (isTimeout(err) || errors.Is(hctx.Err(), context.DeadlineExceeded)) {
		return nil, false, NewError(sslconn.ErrHandshakeTimeout, mode, addr, "no answer to the TLS ClientHello within "+first.String()+" from a server that completed TLS connections before: it is stalled, or its SSL was turned off", err)
	}
	if cr.read.Load() == 0 && (isTimeout(err) || errors.Is(hctx.Err(), context.DeadlineExceeded)) {
		return nil, false, NewError(sslconn.ErrServerNoTLS, mode, addr, "no answer to the TLS ClientHello within "+first.String(), err)
	}
	if cr.read.Load() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return nil, false, NewError(sslconn.ErrServerNoTLS, mode, addr, "server closed the connection on the TLS ClientHello", err)
	}
	cerr := Classify(err, mode, addr)
	var local *sslconn.Error
	if asked.Load() && c.s.ClientCert == nil && (!errors.As(cerr, &local) || errors.Is(cerr, sslconn.ErrTLSVersion) || errors.Is(cerr, sslconn.ErrClientCertRequired)) {
		// The server asked for a certificate, got none, and ended the
		// handshake: whatever alert it chose, that is the cause.
		return nil, true, errCertAsked(mode, addr, err)
	}
	return nil, asked.Load(), cerr
}

func errCertAsked(mode sslconn.Mode, addr string, err error) error {
	return NewError(sslconn.ErrClientCertRequired, mode, addr, "the server asked for a client certificate and none is configured", err)
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
	read  atomic.Int64
	wrote atomic.Bool
	watch *handshakeWatch // may be nil
}

// handshakeWatch reports a handshake's progress to PREFERRED's race.
type handshakeWatch struct {
	dialed   time.Time      // when the TCP connection was made
	raw      net.Conn       // that connection
	sent     chan time.Time // when the ClientHello went out (buffered)
	answered chan struct{}  // closed at the server's first byte
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.read.Add(int64(n)) == int64(n) {
		_ = c.Conn.SetReadDeadline(time.Time{})
		if c.watch != nil {
			close(c.watch.answered)
		}
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.watch != nil && !c.wrote.Swap(true) {
		c.watch.sent <- time.Now()
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
	watch   *watch   // of raw
	tls     *tls.Conn
	cfg     *Config
	mode    sslconn.Mode
	network string
	addr    string
	dial    sslconn.DialFunc
	read    atomic.Bool
	// certAsked: the server asked for a client certificate and got none.
	// Under TLS 1.3 it says so only after the handshake, by ending the
	// connection at the first read or write.
	certAsked bool
}

func (c *Config) wrap(nc, raw net.Conn, tc *tls.Conn, mode sslconn.Mode, network, addr string, dial sslconn.DialFunc) *Conn {
	return &Conn{Conn: nc, raw: raw, watch: c.watch(raw), tls: tc, cfg: c, mode: mode, network: network, addr: addr, dial: dial}
}

// Status returns the connection's TLS state and the client's mode.
func (c *Conn) Status() sslconn.Status {
	st := sslconn.Status{}
	if c.tls != nil {
		cs := c.tls.ConnectionState()
		st = StatusOf(&cs)
	}
	st.Mode = c.cfg.Mode()
	return st
}

// ConnectionState returns the TLS state, and false for a plaintext connection.
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.ConnectionState(), true
}

// Mode returns the mode the connection was made in.
func (c *Conn) Mode() sslconn.Mode { return c.mode }

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.watch.received(n)
		c.read.Store(true)
	} else if err != nil && !c.read.Load() {
		err = c.firstError(err)
	}
	if c.watch.lost(err) {
		// Typed, and not a timeout to the driver, which would re-send it
		// (go-redis) or keep the connection.
		err = OutcomeUnknown(err)
	}
	return n, err
}

// Write refuses to write into a connection the server has already closed
// (a restart): the request is then known not to have been sent, and the
// error matches ErrNotSent, so the caller may retry it safely — unless an
// earlier write is still unanswered (a pipeline sent in parts), which makes
// it ErrOutcomeUnknown. Without this check the bytes would go out, and the
// outcome would be unknown.
func (c *Conn) Write(p []byte) (int, error) {
	if probing.Load() > 0 {
		answerProbes(p, c)
	}
	if c.watch.retiring() {
		// The name now leads elsewhere; between two operations, this
		// connection is dropped for a new one to the new address.
		return 0, NotSent(c, c.watch.movedError())
	}
	if err := c.watch.closed(); err != nil {
		werr := c.watch.writeError(c, err)
		if !c.read.Load() {
			// Closed before its first answer: say why, if we can tell.
			werr = c.firstError(werr)
		}
		return 0, werr
	}
	n, err := c.Conn.Write(p)
	c.watch.sent(n)
	if err != nil && !c.read.Load() {
		err = c.firstError(err)
	}
	return n, err
}

// OnClose has f called, once and from another goroutine, when the server
// closes or resets the connection (its TCP socket, under any TLS), for an
// adapter whose driver must hear of it before its next operation; data
// arriving is not a close. It reports false, and will never call f, where
// that cannot be watched (only Linux can, and only a socket). Call it at
// most once; Close ends the watch.
func (c *Conn) OnClose(f func()) bool { return c.watch.onClose(f) }

// Close ends the connection, and OnClose's watch before its socket.
func (c *Conn) Close() error {
	c.watch.stop()
	return c.Conn.Close()
}

// firstError explains an error on a read or write of a connection the
// server has not yet said a word on.
func (c *Conn) firstError(err error) error { return c.cfg.Explain(c.firstErrorRaw(err)) }

func (c *Conn) firstErrorRaw(err error) error {
	if c.tls != nil && c.certAsked && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || rawKind(err) != nil) {
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
	tc, _, herr := c.cfg.handshake(ctx, sslconn.Required, raw, c.addr)
	if herr != nil && (errors.Is(herr, sslconn.ErrServerNoTLS) || !isTLSAnswer(herr)) {
		return err
	}
	if tc != nil {
		tc.Close()
	}
	if c.mode == sslconn.Preferred {
		// It speaks TLS now (an "enable SSL" restart): a server that speaks
		// TLS cannot have run what came in plaintext, and the next
		// connection encrypts.
		c.cfg.learnTLS(c.addr)
		return NotSent(c.raw, fmt.Errorf("%s: the server dropped the plaintext connection and answers TLS on this port now; new connections use TLS: %w", c.addr, err))
	}
	return NewError(sslconn.ErrServerRequiresTLS, c.mode, c.addr, "the server dropped the plaintext connection and answers TLS on this port", err)
}

// isTLSAnswer reports whether a failed handshake still shows a TLS server
// (it answered in TLS before failing, e.g. asking for a client certificate).
func isTLSAnswer(err error) bool {
	var e *sslconn.Error
	return errors.As(err, &e) && e.Kind != sslconn.ErrServerNoTLS
}
