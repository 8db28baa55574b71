package core

import (
	"context"
	"net"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// DefaultDeadPeer is how long an operation may wait on a server that went
// silent (packets dropped, no FIN or RST: a lost host, a failover behind a
// load balancer) before its connection is ended.
const DefaultDeadPeer = 10 * time.Second

// keepAliveIdle is how long a connection is quiet before the kernel asks
// the server whether it is still there; it asks again every keepAliveEvery.
// A live server's kernel answers within a round trip, whatever the server
// process is doing, so a slow query or a blocking pop is never taken for a
// dead peer; one probe costs a 66-byte packet each way.
const (
	keepAliveIdle  = 2 * time.Second
	keepAliveEvery = time.Second
)

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
	idle := min(keepAliveIdle, bound/2)
	count := max(1, int((bound-idle)/keepAliveEvery))
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: keepAliveEvery, Count: count})
	if rc, err := tc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { setUnackedTimeout(fd, bound) })
	}
}

// armedDialer wraps dial so that every TCP connection it makes is armed.
func armedDialer(dial sslconn.DialFunc, bound time.Duration) sslconn.DialFunc {
	if bound <= 0 {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			armDeadPeer(c, bound)
		}
		return c, err
	}
}
