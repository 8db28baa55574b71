//go:build !unix

package core

import "net"

// peek (watch.closed's way where the kernel's TCP state is not read) cannot
// be done without blocking on Windows sockets as Go opens them (overlapped,
// no MSG_DONTWAIT): the closed-peer check is off there, and a request on a
// connection the server closed fails as the driver reports it.
func peek(net.Conn) error { return nil }

// readable cannot tell without blocking either: false.
func readable(net.Conn) bool { return false }
