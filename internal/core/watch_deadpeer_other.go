//go:build !linux

package core

import (
	"net"
	"time"
)

// setUserTimeout is Linux's TCP_USER_TIMEOUT. Elsewhere keep-alive alone
// bounds a silent peer while nothing is unacknowledged; the nearest
// equivalents for unacknowledged data (macOS's TCP_RXT_CONNDROPTIME,
// Windows's TCP_MAXRT) are issue #25's to weigh.
func setUserTimeout(net.Conn, time.Duration) error { return nil }
