//go:build !linux

package sslconn

import "net"

func peerClosedFD(net.Conn) (error, bool) { return nil, false }
