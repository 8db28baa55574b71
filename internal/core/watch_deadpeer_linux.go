package core

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// setUserTimeout sets TCP_USER_TIMEOUT: the kernel ends conn when data it
// sent stays unacknowledged for d (and, with keep-alive on, when probes
// fail for d).
func setUserTimeout(conn net.Conn, d time.Duration) error {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}
