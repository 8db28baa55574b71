package sslconn

import (
	"context"
	"math/rand/v2"
	"time"

	isettings "github.com/sslconn/sslconn/internal/settings"
)

// Backoff sets the delays between connection attempts: Initial, then
// multiplied by Multiplier up to Max, each with ±Jitter of itself at random
// so that the clients of a restarted instance do not return in step.
//
// With the defaults (100 ms, ×2, max 2 s, jitter 0.2) the delays are about:
//
//	attempt  1     2     3     4     5     6...
//	delay    0.1s  0.2s  0.4s  0.8s  1.6s  2s
//
// so a server back after a restart is found within about 2 s, and the default
// 3-minute budget allows about 90 attempts.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64 // fraction of the delay, 0 to 1; 0 means 0.2, negative means none
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 2 * time.Second
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = 0.2
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		b.Jitter = 1
	}
	return b
}

// delay returns the delay after the given failed attempt (1-based), before jitter.
func (b Backoff) delay(attempt int) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	return min(time.Duration(d), b.Max)
}

// jittered is delay with the jitter applied.
func (b Backoff) jittered(attempt int) time.Duration {
	d := b.delay(attempt)
	return d + time.Duration((rand.Float64()*2-1)*b.Jitter*float64(d))
}

// RetryEvent describes one retry of a new connection: the address, the
// attempt that failed (1-based), the backoff's delay before the next one,
// the time spent so far, and the cause. While a server's port refuses
// connections, the next attempt comes when it accepts again, which may be
// sooner or later than Delay (see docs/restarts.md).
type RetryEvent struct {
	Addr    string
	Attempt int
	Delay   time.Duration
	Elapsed time.Duration
	Err     error
}

// realClock is the Clock unless the engine's tests inject one.
var realClock = isettings.Clock{Now: time.Now, Sleep: sleepCtx}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
