package sslconn

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosedFD asks the kernel for the TCP state: CLOSE_WAIT means the
// server sent FIN, CLOSE that the connection was reset. Unlike a peek, it
// is not fooled by a TLS close_notify waiting unread before the FIN.
func peerClosedFD(conn net.Conn) (error, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	var (
		closed error
		known  bool
	)
	_ = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		known = true
		switch info.State {
		case 8: // TCP_CLOSE_WAIT
			closed = io.EOF
		case 7: // TCP_CLOSE
			closed = syscall.ECONNRESET
		}
	})
	return closed, known
}
