package core

import (
	"time"

	"golang.org/x/sys/unix"
)

// setUnackedTimeout sets TCP_RXT_CONNDROPTIME, macOS's bound (in seconds)
// on retransmitting unacknowledged data before the connection is dropped.
func setUnackedTimeout(fd uintptr, d time.Duration) {
	_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RXT_CONNDROPTIME, max(1, int(d.Seconds())))
}
