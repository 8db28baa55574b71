package core

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
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
	state    *tcpState    // nil where the kernel does not tell (see watch_linux.go)
	lastRead atomic.Int64 // since epoch, ns; 0: never
	// unanswered: bytes were written since the last read, so the server
	// may be acting on a request right now.
	unanswered atomic.Bool

	stopOnce sync.Once
	stopFn   func() // onClose's, or nil
}

// recentRead is how fresh a read must be for closed to skip the kernel.
const recentRead = 50 * time.Microsecond

// epoch makes a watch's timestamps monotonic.
var epoch = time.Now()

// deadPeerBound is the bound Config.watch arms connections with
// (armDeadPeer): 0, off, so that sockets keep the dialer's settings, until
// issue #25 arms them with the Config's (Settings().DeadPeer).
const deadPeerBound time.Duration = 0

// watch arms raw, a TCP connection (under any TLS) that an adapter keeps,
// against a server that goes silent (armDeadPeer with deadPeerBound; off
// for now), and returns its watch. Every connection an adapter keeps comes
// through here: those of Dial (Redis, MongoDB, whatever dialed them) and of
// Watched (SQL Server); PREFERRED's and the retries' short-lived probes do
// not. MySQL's do not yet: go-sql-driver dials them itself, unless
// WithDialer, and checks them itself before reuse (CheckConnLiveness,
// which also drops a connection with unsolicited bytes waiting); #25 gives
// it a DialFunc that dials as the driver does (armedDialer).
func (c *Config) watch(raw net.Conn) *watch {
	armDeadPeer(raw, deadPeerBound)
	return newWatch(raw)
}

// newWatch prepares the watch of raw, a TCP connection (the socket, not a
// TLS connection over it). Any other connection gets a watch that never
// sees a close.
func newWatch(raw net.Conn) *watch { return &watch{conn: raw, state: newTCPState(raw)} }

// received records a read that returned n bytes.
func (w *watch) received(n int) {
	if n > 0 {
		w.lastRead.Store(int64(time.Since(epoch)))
		w.unanswered.Store(false)
	}
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
	if err, known := w.state.closed(); known {
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
	stop, ok := notifyClose(w.conn, f)
	if ok {
		w.stopFn = stop
	}
	return ok
}

// stop ends onClose's watch, if any. Call it before the socket is closed;
// calling it again does nothing.
func (w *watch) stop() {
	if w.stopFn != nil {
		w.stopOnce.Do(w.stopFn)
	}
}

// Watched returns raw, a TCP connection that an adapter's driver dialed
// (through Dialer) and keeps, does TLS over and writes to, with a write
// into it refused when the server has already closed it: sslconn.ErrNotSent
// (or ErrOutcomeUnknown after an unanswered write), as Conn.Write does. It
// is armed against a server that goes silent (see Config.watch).
func (c *Config) Watched(raw net.Conn) net.Conn { return &watchedConn{Conn: raw, w: c.watch(raw)} }

// watchedConn is Watched's connection.
type watchedConn struct {
	net.Conn
	w *watch
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received(n)
	return n, err
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if err := c.w.closed(); err != nil {
		return 0, c.w.writeError(c.Conn, err)
	}
	n, err := c.Conn.Write(p)
	c.w.sent(n)
	return n, err
}
