//go:build !linux && !darwin && !windows

package core

import "time"

// setUnackedTimeout: the other systems bound unacknowledged data with
// their own retransmission limits; keepalive still ends quiet connections.
func setUnackedTimeout(uintptr, time.Duration) {}
