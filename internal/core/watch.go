package core

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Watch is the one place that tells whether the server has closed or
// reset a TCP connection, asked in two ways:
//
//   - before a write (Closed, then WriteError): without blocking or
//     consuming anything, so that a request written into a connection the
//     server closed (a restart) is refused as sslconn.ErrNotSent instead of
//     going out with an unknown outcome. On Linux it reads the kernel's TCP
//     state and allocates nothing per call (one getsockopt); on macOS and
//     the BSDs it peeks; on Windows it cannot tell and says nothing.
//   - in the background (OnClose): a function called as soon as the server
//     closes or resets the connection, without reading from it, for an
//     adapter whose driver must hear of a restart before its next
//     operation (mongocore's pings). Linux only (one epoll set for the
//     whole process); elsewhere OnClose reports that it cannot.
//
// A Watch is made once per connection, on the TCP socket under any TLS, by
// Config.Watch, which also arms the socket against a peer that goes silent
// (armDeadPeer): a *Conn from Dial has one (Conn.Watch), and an adapter
// whose driver dials through Config.Dialer makes its own.
//
// A connection that delivered data in the last recentRead (see Received) is
// taken as alive without asking the kernel: back-to-back operations then
// cost nothing, and a FIN landing in that window is the same race as one
// landing just after the check; the check is for connections that sat idle
// in a pool while the server restarted.
type Watch struct {
	conn     net.Conn
	state    *tcpState    // nil where the kernel does not tell (see watch_linux.go)
	lastRead atomic.Int64 // since epoch, ns; 0: never
	// unanswered: bytes were written since the last read, so the server
	// may be acting on a request right now.
	unanswered atomic.Bool

	stopOnce sync.Once
	stop     func() // OnClose's, or nil
}

// recentRead is how fresh a read must be for Closed to skip the kernel.
const recentRead = 50 * time.Microsecond

// epoch makes a Watch's timestamps monotonic.
var epoch = time.Now()

// newWatch prepares the watch of raw, a TCP connection (the socket, not a
// TLS connection over it). Any other connection gets a Watch that never
// sees a close.
func newWatch(raw net.Conn) *Watch { return &Watch{conn: raw, state: newTCPState(raw)} }

// Received records a read that returned n bytes.
func (w *Watch) Received(n int) {
	if n > 0 {
		w.lastRead.Store(int64(time.Since(epoch)))
		w.unanswered.Store(false)
	}
}

// Sent records a write of n bytes.
func (w *Watch) Sent(n int) {
	if n > 0 {
		w.unanswered.Store(true)
	}
}

// Closed returns io.EOF or syscall.ECONNRESET when the server has closed
// or reset the connection, and nil while it looks alive, right after a
// read, or where the platform cannot tell.
func (w *Watch) Closed() error {
	if last := w.lastRead.Load(); last != 0 && time.Since(epoch)-time.Duration(last) < recentRead {
		return nil
	}
	if err, known := w.state.closed(); known {
		return err
	}
	return peek(w.conn)
}

// WriteError is the error for a write into a connection the server has
// closed (cause, from Closed): sslconn.ErrNotSent when everything written
// before was answered, so this request is known not to have been sent;
// sslconn.ErrOutcomeUnknown when earlier writes are unanswered (the first
// part of a large pipeline went out and may have run). conn is the
// connection the error names.
func (w *Watch) WriteError(conn net.Conn, cause error) error {
	err := NotSent(conn, cause)
	if w.unanswered.Load() {
		return OutcomeUnknown(err)
	}
	return err
}

// OnClose has onClose called, once and from another goroutine, when the
// server closes or resets the connection; data arriving is not a close. It
// reports false, and will never call onClose, where that cannot be watched
// (not Linux, not a socket). Call it at most once per Watch; Stop ends it.
func (w *Watch) OnClose(onClose func()) bool {
	stop, ok := notifyClose(w.conn, onClose)
	if ok {
		w.stop = stop
	}
	return ok
}

// Stop ends OnClose's watch, if any. Call it before the socket is closed
// (Conn.Close does); calling it again does nothing.
func (w *Watch) Stop() {
	if w.stop != nil {
		w.stopOnce.Do(w.stop)
	}
}

// deadPeerBound is the bound Config.Watch arms connections with
// (armDeadPeer): 0, off, so that sockets keep the dialer's settings, until
// issue #25 makes it the Config's option (DefaultDeadPeer unless set).
const deadPeerBound time.Duration = 0

// Watch returns the Watch of raw, a TCP connection (under any TLS) that an
// adapter keeps, after arming it against a server that goes silent
// (armDeadPeer with deadPeerBound; off for now). The connections of Dial
// (Redis, MongoDB, whatever dialed them) and of mssqlssl's dialer come
// through here; PREFERRED's and the retries' short-lived probes do not.
// MySQL's do not yet: go-sql-driver dials them itself, unless WithDialer,
// and checks them itself before reuse (CheckConnLiveness, which also drops
// a connection with unsolicited bytes waiting); #25 gives it a DialFunc
// that dials as the driver does (armedDialer).
func (c *Config) Watch(raw net.Conn) *Watch {
	armDeadPeer(raw, deadPeerBound)
	return newWatch(raw)
}
