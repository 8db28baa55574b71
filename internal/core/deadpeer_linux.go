package core

import (
	"time"

	"golang.org/x/sys/unix"
)

// setUnackedTimeout sets TCP_USER_TIMEOUT: the kernel ends the connection
// when data it sent stays unacknowledged for d, and (with keepalive on)
// when probes go unanswered that long.
func setUnackedTimeout(fd uintptr, d time.Duration) {
	_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
}
