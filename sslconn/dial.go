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

// plainProbeTimeout is how long a handshake waits for the server's first
// byte at an address already seen to answer TLS with silence (Redis on its
// plaintext port never answers a ClientHello), so PREFERRED there costs each
// new connection this, not the whole handshake timeout.
const plainProbeTimeout = 300 * time.Millisecond

// plainHintTTL is how long that observation is trusted.
const plainHintTTL = time.Minute

// Dial connects to addr in the configured mode for engines where TLS wraps
// the whole connection (Redis, MongoDB): plaintext for DISABLED, TLS
// otherwise. PREFERRED falls back to plaintext, on a new connection, only
// when the server does not speak TLS there: it answers the ClientHello in
// plaintext, closes the connection, or stays silent; a handshake that starts
// and fails is an error, never a downgrade. Errors are classified (see
// Classify) and name addr.
func (c *Config) Dial(ctx context.Context, network, addr string, dial DialFunc) (net.Conn, error) {
	return c.DialMode(ctx, c.mode, network, addr, dial)
}

// DialMode is Dial with a mode other than the configured one.
func (c *Config) DialMode(ctx context.Context, mode Mode, network, addr string, dial DialFunc) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	raw, err := dial(ctx, network, addr)
	if err != nil || mode == Disabled {
		return raw, err
	}
	conn, err := c.Handshake(ctx, mode, raw, addr)
	if err == nil {
		return conn, nil
	}
	if mode == Preferred && errors.Is(err, ErrServerNoTLS) {
		c.log.Debug("sslconn: server does not speak TLS here; PREFERRED falls back to plaintext", "addr", addr)
		return dial(ctx, network, addr)
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
	timeout := c.handshakeTimeout
	if t, ok := plainHints.Load(addr); ok && time.Since(t.(time.Time)) < plainHintTTL {
		timeout = min(timeout, plainProbeTimeout)
	}
	cr := &countingConn{Conn: raw}
	tc := tls.Client(cr, c.TLSConfigMode(mode, addr))
	asked := new(atomic.Bool)
	hctx, cancel := context.WithTimeout(context.WithValue(ctx, certAskedKey{}, asked), timeout)
	defer cancel()
	err := tc.HandshakeContext(hctx)
	if err == nil {
		plainHints.Delete(addr)
		return tc, nil
	}
	raw.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cr.read.Load() == 0 && (isTimeout(err) || errors.Is(hctx.Err(), context.DeadlineExceeded)) {
		plainHints.Store(addr, time.Now())
		return nil, NewError(ErrServerNoTLS, mode, addr, "no answer to the TLS ClientHello within "+timeout.String(), err)
	}
	if cr.read.Load() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return nil, NewError(ErrServerNoTLS, mode, addr, "server closed the connection on the TLS ClientHello", err)
	}
	cerr := Classify(err, mode, addr)
	var local *Error
	if asked.Load() && c.clientCert == nil && (!errors.As(cerr, &local) || errors.Is(cerr, ErrTLSVersion) || errors.Is(cerr, ErrClientCertRequired)) {
		// The server asked for a certificate, got none, and ended the
		// handshake: whatever alert it chose, that is the cause.
		return nil, NewError(ErrClientCertRequired, mode, addr, "the server asked for a client certificate and none is configured", err)
	}
	return nil, cerr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingConn counts the bytes the server sent, to tell "no answer" from a
// handshake that started.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
