package core

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// A watch is the one place that tells whether the server has closed or
// reset a TCP connection, asked in two ways:
//
//   - before a write (closed, then writeError): without blocking or
//     consuming anything, so that a request written into a connection the
//     server closed (a restart) is refused as sslconn.ErrNotSent instead of
//     going out with an unknown outcome. On Linux it reads the kernel's TCP
//     state and allocates nothing per call (one getsockopt); on macOS and
//     the BSDs it peeks; on Windows it cannot tell and says nothing.
//   - in the background (onClose): a function called as soon as the server
//     closes or resets the connection, without reading from it, for an
//     adapter whose driver must hear of a restart before its next
//     operation (mongocore's pings, through Conn.OnClose). Linux only (one
//     epoll set for the whole process); elsewhere onClose reports that it
//     cannot.
//
// A watch is made once per connection an adapter keeps, on the TCP socket
// under any TLS, by Config.watch, which also arms the socket against a
// server that goes silent (armDeadPeer). A *Conn from Dial has one, and so
// has a connection from Config.Watched (the TCP connections that
// mssqlssl's driver dials and does TLS over).
//
// A connection that delivered data in the last recentRead (see received) is
// taken as alive without asking the kernel: back-to-back operations then
// cost nothing, and a FIN landing in that window is the same race as one
// landing just after the check; the check is for connections that sat idle
// in a pool while the server restarted.
type watch struct {
	conn     net.Conn
	server   string       // the remote address, for silentSince
	made     int64        // since epoch, ns
	state    *tcpState    // nil where the kernel does not tell (see watch_linux.go)
	lastRead atomic.Int64 // since epoch, ns; 0: never
	// unanswered: bytes were written since the last read, so the server
	// may be acting on a request right now.
	unanswered atomic.Bool

	stopOnce sync.Once
	stopFn   func() // onClose's, or nil

	// name and ip: the host name the connection was dialed through and
	// the address it leads to, when followed (see watch_moved.go);
	// retired once the name no longer resolves to ip.
	name    string
	ip      netip.Addr
	retired atomic.Bool
	// closeFn is onClose's f, also called when the connection is retired:
	// the adapter's driver then drops it as after a restart.
	closeFn atomic.Pointer[func()]
}

// recentRead is how fresh a read must be for closed to skip the kernel.
const recentRead = 50 * time.Microsecond

// epoch makes a watch's timestamps monotonic.
var epoch = time.Now()

// watch arms raw, a TCP connection (under any TLS) that an adapter keeps,
// against a server that goes silent (armDeadPeer with WithDeadPeerTimeout's
// bound), and returns its watch. Every connection an adapter keeps comes
// through here: those of Dial (Redis, MongoDB, whatever dialed them) and of
// Watched (MySQL, SQL Server); PREFERRED's and the retries' short-lived
// probes do not.
func (c *Config) watch(raw net.Conn) *watch {
	armDeadPeer(raw, c.s.DeadPeer)
	w := newWatch(raw)
	if name := takeName(raw); name != "" {
		w.follow(name)
	}
	return w
}

// newWatch prepares the watch of raw, a TCP connection (the socket, not a
// TLS connection over it). Any other connection gets a watch that never
// sees a close.
func newWatch(raw net.Conn) *watch {
	w := &watch{conn: raw, state: newTCPState(raw), made: int64(time.Since(epoch))}
	if a := raw.RemoteAddr(); a != nil {
		w.server = a.String()
	}
	return w
}

// received records a read that returned n bytes.
func (w *watch) received(n int) {
	if n > 0 {
		w.lastRead.Store(int64(time.Since(epoch)))
		w.unanswered.Store(false)
		if silentServers.Load() > 0 {
			heard(w.server)
		}
	}
}

// A server found silent on one connection is taken for silent on its other
// connections that have heard nothing from it since, without waiting for
// their own probes: a pool's idle connections, and a driver's monitoring
// connection that would otherwise send its next check into the silence.
// Anything heard from the server ends that.
var (
	silentMu      sync.Mutex
	silentSince   = map[string]int64{} // server address -> when found silent (since epoch, ns)
	silentServers atomic.Int32         // len(silentSince), read without the lock
)

// foundSilent records that server was found silent on a connection.
func foundSilent(server string) {
	if server == "" {
		return
	}
	silentMu.Lock()
	defer silentMu.Unlock()
	if _, ok := silentSince[server]; !ok {
		defer deadPeerFound(server)
		silentSince[server] = int64(time.Since(epoch))
		silentServers.Store(int32(len(silentSince)))
	}
}

// heard forgets that server was silent.
func heard(server string) {
	silentMu.Lock()
	defer silentMu.Unlock()
	if _, ok := silentSince[server]; ok {
		delete(silentSince, server)
		silentServers.Store(int32(len(silentSince)))
	}
}

// silentServer tells whether w's server was found silent after w last
// heard from it (or was made: a new connection has been answered).
func (w *watch) silentServer() bool {
	if silentServers.Load() == 0 {
		return false
	}
	silentMu.Lock()
	since, ok := silentSince[w.server]
	silentMu.Unlock()
	return ok && since > max(w.lastRead.Load(), w.made)
}

// lost reports whether a read's err means the connection is lost with
// whatever was asked on it possibly run: the kernel gave up on a silent
// server (armDeadPeer), which is then taken for silent, or the server's
// host reset the connection with a request unanswered. A driver's own read
// timeout is left to the driver, but when the kernel tells that the server
// went silent (Linux), the server is taken for silent too.
func (w *watch) lost(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, syscall.ETIMEDOUT):
		foundSilent(w.server)
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		if cause, _ := w.state.closed(); errors.Is(cause, syscall.ETIMEDOUT) {
			foundSilent(w.server)
		}
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) && w.unanswered.Load()
}

// sent records a write of n bytes.
func (w *watch) sent(n int) {
	if n > 0 {
		w.unanswered.Store(true)
	}
}

// closed returns io.EOF or syscall.ECONNRESET when the server has closed
// or reset the connection, and nil while it looks alive, right after a
// read, or where the platform cannot tell.
func (w *watch) closed() error {
	if last := w.lastRead.Load(); last != 0 && time.Since(epoch)-time.Duration(last) < recentRead {
		return nil
	}
	err, known := w.state.closed()
	switch {
	case errors.Is(err, syscall.ETIMEDOUT):
		foundSilent(w.server)
	case err == nil && w.silentServer():
		err = syscall.ETIMEDOUT
	}
	if err != nil || known {
		return err
	}
	return peek(w.conn)
}

// writeError is the error for a write into a connection the server has
// closed (cause, from closed): sslconn.ErrNotSent when everything written
// before was answered, so this request is known not to have been sent;
// sslconn.ErrOutcomeUnknown when earlier writes are unanswered (the first
// part of a large pipeline went out and may have run). conn is the
// connection the error names.
func (w *watch) writeError(conn net.Conn, cause error) error {
	err := NotSent(conn, cause)
	if w.unanswered.Load() {
		return OutcomeUnknown(err)
	}
	return err
}

// onClose has f called, once and from another goroutine, when the server
// closes or resets the connection; data arriving is not a close. It
// reports false, and will never call f, where that cannot be watched (not
// Linux, not a socket). Call it at most once per watch; stop ends it.
func (w *watch) onClose(f func()) bool {
	f = sync.OnceFunc(f)
	stop, ok := notifyClose(w, f)
	if ok {
		w.stopFn = stop
		w.closeFn.Store(&f)
	}
	return ok
}

// stop ends onClose's watch, if any, and the following of the
// connection's name. Call it before the socket is closed; calling it again
// does nothing.
func (w *watch) stop() {
	w.stopOnce.Do(func() {
		if w.name != "" {
			names.remove(w)
		}
		if w.stopFn != nil {
			w.stopFn()
		}
	})
}

// Watched returns raw, a TCP connection that an adapter's driver dialed
// (through Dialer) and keeps, does TLS over and writes to, with a write
// into it refused when the server has already closed it: sslconn.ErrNotSent
// (or ErrOutcomeUnknown after an unanswered write), as Conn.Write does. It
// is armed against a server that goes silent (see Config.watch).
func (c *Config) Watched(raw net.Conn) net.Conn {
	w := &watchedConn{Conn: raw, w: c.watch(raw)}
	if sc, ok := raw.(syscall.Conn); ok {
		return &watchedSocket{w, sc}
	}
	return w
}

// DialWatched dials a connection with dial (nil: the Config's, see Dialer)
// and returns it Watched: the TCP connection under a driver's own TLS and
// login. A refused dial is then waited out as Dial's are: with the other
// clients that dial the address the same way.
func (c *Config) DialWatched(ctx context.Context, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	dial, _ = c.dialFor(ctx, dial, network, addr)
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return c.Watched(raw), nil
}

// watchedConn is Watched's connection.
type watchedConn struct {
	net.Conn
	w *watch
}

// watchedSocket is a watchedConn over a socket, which it still exposes, so
// that a driver's own check of an idle connection (go-sql-driver's
// CheckConnLiveness) still reaches it. That check is also where a
// connection to an address its name no longer resolves to is retired: it
// runs only when the pool hands out a connection, never in the middle of
// an operation or a transaction, and the driver then takes another.
type watchedSocket struct {
	*watchedConn
	sc syscall.Conn
}

func (c *watchedSocket) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.sc.SyscallConn()
	if err != nil || c.w.name == "" {
		return rc, err
	}
	return retiringRawConn{rc, c.w}, nil
}

// retiringRawConn fails a read of a retired connection's socket (a
// driver's liveness check) before it is made.
type retiringRawConn struct {
	syscall.RawConn
	w *watch
}

func (r retiringRawConn) Read(f func(fd uintptr) bool) error {
	// The pool hands the connection out: between operations, whatever
	// was last written (go-sql-driver's COM_STMT_CLOSE has no answer).
	if r.w.retired.Load() {
		return r.w.movedError()
	}
	return r.RawConn.Read(f)
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received(n)
	if c.w.lost(err) {
		// Still a network error, so that the driver drops the connection
		// (go-mssqldb tells a bad connection by its type), but typed, and
		// no longer a timeout it could take for its own.
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: OutcomeUnknown(err)}
	}
	return n, err
}

// Close ends the following of the connection's name, then the connection.
func (c *watchedConn) Close() error {
	c.w.stop()
	return c.Conn.Close()
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if err := c.w.closed(); err != nil {
		return 0, c.w.writeError(c.Conn, err)
	}
	n, err := c.Conn.Write(p)
	c.w.sent(n)
	return n, err
}
