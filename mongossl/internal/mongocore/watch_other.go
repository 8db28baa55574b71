//go:build !linux

package mongocore

import "net"

// watchClose needs epoll: elsewhere nothing is watched, and the first
// operation after a restart fails as with the bare driver (see live.go).
func watchClose(net.Conn, func()) (stop func(), ok bool) { return nil, false }
