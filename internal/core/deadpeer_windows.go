package core

import (
	"time"

	"golang.org/x/sys/windows"
)

// setUnackedTimeout sets TCP_MAXRT, Windows' bound (in seconds) on
// retransmitting unacknowledged data before the connection is dropped.
func setUnackedTimeout(fd uintptr, d time.Duration) {
	_ = windows.SetsockoptInt(windows.Handle(fd), windows.IPPROTO_TCP, windows.TCP_MAXRT, max(1, int(d.Seconds())))
}
