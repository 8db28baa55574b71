package mongocore

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// After a server restart the driver hands the next operation an idle pooled
// connection the server has closed: its pool checks no socket before use
// (x/mongo/driver/topology/pool.go, connectionPerished, the same in v1.17
// and v2: only the driver's own closed flag, the idle timeout and the pool
// generation), and its monitor, unless the server streams hello (MongoDB
// 4.4+; not FerretDB nor older servers, nor ServerMonitoringMode=poll),
// finds out only at its next heartbeat, 10 s by default. The operation's
// write is refused unsent (core.Conn, sslconn.ErrNotSent), the driver
// clears the pool and marks the server unknown, and returns the error: a
// retryable read is retried, but RunCommand (Ping among them) never is,
// nor a write to a standalone.
//
// So a client made by ConnectOptions watches its connections (on Linux, see
// watch_linux.go), and as soon as the server closes one, it pings through
// the client. On a restart the
// ping takes a dead pooled connection, its write is refused unsent, and the
// driver clears the pool and marks the server unknown; the application's
// next operation then waits for the server, as for any server known to be
// down, and gets a new connection. A ping that gets a live connection (a
// server closing its connections one by one, or a proxy that closed one
// idle connection) is followed by another while more closes came in
// meanwhile. Nothing the application sent is sent again; a ping has no
// effect on the server. The user's command monitor does not see the pings
// (the adapters' hidePings, with IsPing).

// pingTimeout bounds a ping. One that matters fails at once, on the dead
// connection; one that finds the server already unknown (an operation in
// flight failed first) would wait for it, uselessly.
const pingTimeout = time.Second

// PingKey marks the context of the pings, for the adapters' hidePings.
type PingKey struct{}

// IsPing reports whether ctx is that of one of Live's pings.
func IsPing(ctx context.Context) bool { return ctx != nil && ctx.Value(PingKey{}) != nil }

// Ping sends {ping: 1} to the admin database through the client, with a
// read preference any server may answer (in a replica set it may be
// another, which is harmless): the adapter's translation.
type Ping func(ctx context.Context) error

// Live pings through a client when the server closes its connections.
type Live struct {
	mu    sync.Mutex
	ping  Ping                  // nil until connected
	pings map[string]*pingState // addresses being pinged
}

type pingState struct{ again bool }

// NewLive returns a Live for a client about to connect.
func NewLive() *Live { return &Live{pings: map[string]*pingState{}} }

// Attach starts the pings, through the connected client.
func (l *Live) Attach(p Ping) {
	l.mu.Lock()
	l.ping = p
	l.mu.Unlock()
}

// track watches conn, made to addr over raw (the TCP connection under any
// TLS, nil when unknown), and returns what to hand to the driver.
func (l *Live) track(conn, raw net.Conn, addr string) net.Conn {
	if raw == nil {
		return conn
	}
	w := &watchedConn{Conn: conn}
	stop, ok := watchClose(raw, func() { l.serverClosed(addr) })
	if !ok {
		return conn
	}
	w.stop = stop
	return w
}

// serverClosed pings addr, or has the running ping followed by another.
func (l *Live) serverClosed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ping == nil {
		return
	}
	if p := l.pings[addr]; p != nil {
		p.again = true
		return
	}
	l.pings[addr] = &pingState{}
	go l.run(addr, l.ping)
}

// run has the driver find out that the server at addr went away (see
// above).
func (l *Live) run(addr string, ping Ping) {
	for {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), PingKey{}, true), pingTimeout)
		err := ping(ctx)
		cancel()
		l.mu.Lock()
		p := l.pings[addr]
		// Failed, the driver knows (or the client is gone): done.
		if err != nil || !p.again {
			delete(l.pings, addr)
			l.mu.Unlock()
			return
		}
		p.again = false
		l.mu.Unlock()
	}
}

// watchedConn is a connection handed to the driver, watched until closed.
type watchedConn struct {
	net.Conn
	stop func()
	once sync.Once
}

func (w *watchedConn) Close() error {
	w.once.Do(w.stop) // before the socket closes
	return w.Conn.Close()
}

// rawDials records the TCP connections a dial makes, so that the one under
// the connection returned can be watched.
type rawDials struct {
	mu   sync.Mutex
	done bool
	raws []net.Conn
}

// wrap returns dial, recording what it makes until find is called (later
// dials, PREFERRED's background checks among them, pass through).
func (r *rawDials) wrap(dial sslconn.DialFunc) sslconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			r.mu.Lock()
			if !r.done {
				r.raws = append(r.raws, c)
			}
			r.mu.Unlock()
		}
		return c, err
	}
}

// find returns the recorded connection under conn: the one with its
// addresses (PREFERRED may have dialed two and closed one), or nil. It
// ends the recording (conn nil: only that).
func (r *rawDials) find(conn net.Conn) net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	defer func() { r.raws = nil }()
	if conn == nil {
		return nil
	}
	same := func(a, b net.Addr) bool {
		return a != nil && b != nil && a.Network() == b.Network() && a.String() == b.String()
	}
	for _, raw := range r.raws {
		if same(raw.LocalAddr(), conn.LocalAddr()) && same(raw.RemoteAddr(), conn.RemoteAddr()) {
			return raw
		}
	}
	return nil
}
