package core

import (
	"net"
	"time"
)

// A peer that goes silent (packets dropped, no FIN nor RST: a lost host, a
// failover behind a load balancer) sends no close for a Watch to see. The
// contract bounds how long it may hold an operation (issue #25); that is
// the socket's to enforce, armed once when the connection is made:
// Config.Watch, which every connection an adapter keeps goes through,
// calls armDeadPeer with the Config's bound.
//
// deadPeerBound is that bound while no option sets it: 0, off, so that
// connections keep the dialer's settings (net.Dialer's 30 s keep-alive).
// Issue #25 replaces it with the Config's option (default 10 s), once real
// servers show that a healthy slow operation (a 25 s SELECT SLEEP(25), a
// 25 s BLPOP) is not cut: it should not be, since the server's kernel
// acknowledges both the keep-alive probes and the data.
const deadPeerBound time.Duration = 0

// Watch returns the Watch of raw, a connection (TCP, under any TLS) that an
// adapter keeps, armed against a silent peer with the Config's bound
// (armDeadPeer; off for now; a socket that refuses the options keeps its
// own). The connections of Dial (Redis, MongoDB) and of mssqlssl's dialer
// come through here. MySQL's do not yet: go-sql-driver dials them itself,
// unless WithDialer, and checks them itself before reuse
// (CheckConnLiveness, which also drops a connection with unsolicited bytes
// waiting); #25 gives it a DialFunc that dials as the driver does and hands
// the socket to this.
func (c *Config) Watch(raw net.Conn) *Watch {
	_ = armDeadPeer(raw, deadPeerBound)
	return newWatch(raw)
}

// armDeadPeer has the kernel end conn, a TCP connection, when its peer
// stays silent for about bound, so that an operation blocked on it fails
// instead of hanging:
//
//   - idle or waiting for an answer, keep-alive probes: the first after
//     bound/2 without a packet, then deadPeerProbes more, bound/2 apart in
//     all (each at least a second: the kernels count whole seconds);
//   - with data sent and not acknowledged (Linux), TCP_USER_TIMEOUT =
//     bound, which on Linux also governs when failed keep-alives end the
//     connection.
//
// A slow but healthy server is never cut: its kernel acknowledges the
// probes and the data whatever the server is doing. bound 0 (off), or a
// connection that is not TCP (some user dialers), leaves conn as it is. It
// returns the first error of the socket options.
func armDeadPeer(conn net.Conn, bound time.Duration) error {
	if bound <= 0 {
		return nil
	}
	ka, ok := conn.(interface {
		SetKeepAliveConfig(net.KeepAliveConfig) error
	})
	if !ok {
		return nil
	}
	idle := max(bound/2, time.Second).Truncate(time.Second)
	interval := max((bound-idle)/deadPeerProbes, time.Second).Truncate(time.Second)
	if err := ka.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: interval, Count: deadPeerProbes}); err != nil {
		return err
	}
	return setUserTimeout(conn, bound)
}

// deadPeerProbes is how many keep-alive probes go unanswered before the
// kernel ends a connection armed by armDeadPeer.
const deadPeerProbes = 3
