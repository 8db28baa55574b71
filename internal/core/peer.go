package core

import (
	"net"
	"sync/atomic"
	"time"
)

// PeerCheck tells, without blocking or consuming anything, whether the
// server has closed or reset a TCP connection. It is made once per
// connection and asked before every write: on Linux it reads the kernel's
// TCP state and allocates nothing per call (one getsockopt); on macOS and
// the BSDs it peeks; on Windows it cannot tell and says nothing. A
// connection that delivered data in the last recentRead (see Received) is
// taken as alive without asking: back-to-back operations then cost nothing,
// and a FIN landing in that window is the same race as one landing just
// after the check; the check is for connections that sat idle in a pool
// while the server restarted.
type PeerCheck struct {
	conn     net.Conn
	probe    *peerProbe
	lastRead atomic.Int64 // since epoch, ns; 0: never
	// unanswered: bytes were written since the last read, so the server
	// may be acting on a request right now.
	unanswered atomic.Bool
}

// recentRead is how fresh a read must be for PeerCheck to skip the kernel.
const recentRead = 50 * time.Microsecond

// epoch makes PeerCheck's timestamps monotonic.
var epoch = time.Now()

// Received records a read that returned n bytes.
func (p *PeerCheck) Received(n int) {
	if n > 0 {
		p.lastRead.Store(int64(time.Since(epoch)))
		p.unanswered.Store(false)
	}
}

// Sent records a write of n bytes.
func (p *PeerCheck) Sent(n int) {
	if n > 0 {
		p.unanswered.Store(true)
	}
}

// WriteError is the error for a write into a connection the server has
// closed (cause, from Closed): sslconn.ErrNotSent when everything written
// before was answered, so this request is known not to have been sent;
// sslconn.ErrOutcomeUnknown when earlier writes are unanswered (the first
// part of a large pipeline went out and may have run).
func (p *PeerCheck) WriteError(conn net.Conn, cause error) error {
	err := NotSent(conn, cause)
	if p.unanswered.Load() {
		return OutcomeUnknown(err)
	}
	return err
}

// NewPeerCheck prepares the check for conn, a TCP connection.
func NewPeerCheck(conn net.Conn) *PeerCheck { return &PeerCheck{conn: conn, probe: newPeerProbe(conn)} }

// Closed returns io.EOF or syscall.ECONNRESET when the server has closed
// or reset the connection, and nil while it looks alive, right after a
// read, or where the platform cannot tell.
func (p *PeerCheck) Closed() error {
	if last := p.lastRead.Load(); last != 0 && time.Since(epoch)-time.Duration(last) < recentRead {
		return nil
	}
	if err, known := p.probe.closed(); known {
		return err
	}
	return peek(p.conn)
}
