package core

import (
	"net"
	"time"
)

// keepAliveIdle is how long a connection is quiet before the kernel asks
// the server whether it is still there; it asks again every keepAliveEvery.
// A live server's kernel answers within a round trip, whatever the server
// process is doing, so a slow query or a blocking pop is never taken for a
// dead peer; one probe costs a 66-byte packet each way.
const (
	keepAliveIdle  = 2 * time.Second
	keepAliveEvery = time.Second
)

// silentAfter is how long since the peer's last acknowledgement, with a
// keepalive probe or a retransmission unanswered, a server counts as
// silent (where the kernel tells: Linux, see watch_linux.go): the probe
// goes out after keepAliveIdle of quiet, and a live server's kernel answers
// either within a round trip. A write into such a connection would only
// wait for the dead-peer bound, so it is refused unsent instead.
const silentAfter = keepAliveIdle + keepAliveEvery/2

// connectTimeout bounds one TCP connect. With dead-peer detection on it is
// a third of the bound (at least a second): a live server answers a SYN
// within a round trip, the kernel resends a lost one after 1 s and 3 s, and
// a connect to a silent address (a name not yet moved off a lost primary)
// would otherwise hold the attempt for the whole dialTimeout; the next
// attempt resolves the name again.
func (c *Config) connectTimeout() time.Duration {
	if c.s.DeadPeer <= 0 {
		return dialTimeout
	}
	return min(dialTimeout, max(time.Second, c.s.DeadPeer*3/10))
}

// armDeadPeer makes the kernel end conn when its server stops answering
// for bound: keepalive probes on a quiet connection, and on Linux
// TCP_USER_TIMEOUT for data left unacknowledged (a request written into
// the silence), so that a read or write blocked on a silent server fails
// within bound instead of after the system's 15 minutes. bound <= 0
// leaves the connection as dialed. Connections that are not TCP (a user's
// dialer through SSH) are left alone.
func armDeadPeer(conn net.Conn, bound time.Duration) {
	tc, ok := conn.(*net.TCPConn)
	if !ok || bound <= 0 {
		return
	}
	// The kernel acts on its own timers, up to a few hundred milliseconds
	// after the limit: a tenth of the bound (at most a second) is kept for
	// them, so that the operation has ended by the bound.
	bound -= min(bound/10, time.Second)
	idle := min(keepAliveIdle, bound/2)
	count := max(1, int((bound-idle)/keepAliveEvery))
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: keepAliveEvery, Count: count})
	if rc, err := tc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { setUnackedTimeout(fd, bound) })
	}
}
