//go:build !linux

package core

import "net"

// tcpState reads the TCP state where the kernel tells it (Linux); here
// watch.closed peeks instead (see watch_peek.go).
type tcpState struct{}

func newTCPState(net.Conn) *tcpState { return nil }

func (*tcpState) closed() (error, bool) { return nil, false }

// notifyClose needs epoll: elsewhere nothing is watched in the background,
// and an adapter that relies on it (mongocore's pings) does without: the
// first operation after a restart fails as with the bare driver.
func notifyClose(*watch, func()) (stop func(), ok bool) { return nil, false }
