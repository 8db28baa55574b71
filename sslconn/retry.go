package sslconn

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
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

// RetryEvent describes one retry: the attempt that failed (1-based), the
// delay before the next one, the time spent so far, and the cause.
type RetryEvent struct {
	Addr    string
	Attempt int
	Delay   time.Duration
	Elapsed time.Duration
	Err     error
}

// clock is injectable so the retry tests run without sleeping.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retry runs connect until it succeeds, returns a permanent error (see
// IsPermanent), the retry budget is spent, or ctx ends. Each retry is logged
// and passed to the retry callback. It is meant for new connections only:
// an operation whose outcome is unknown must never be handed to Retry.
func (c *Config) Retry(ctx context.Context, addr string, connect func(context.Context) error) error {
	spent, err := c.retry(ctx, addr, connect, func(err error) bool { return !IsPermanent(err) })
	if spent != "" {
		return fmt.Errorf("sslconn: gave up on %s after %s (retry budget %s): %w", addr, spent, c.retryBudget, err)
	}
	return err
}

// RetrySafe runs op again while it fails with an error that safe says
// proves the operation was not executed (ErrNotSent, a Redis LOADING
// reply), with the same budget, backoff, log and callback as Retry. Any
// other result, and the last error when the budget is spent, is returned
// unchanged, so callers comparing errors with == still can.
func (c *Config) RetrySafe(ctx context.Context, addr string, op func(context.Context) error, safe func(error) bool) error {
	_, err := c.retry(ctx, addr, op, safe)
	return err
}

// retry is the loop behind Retry and RetrySafe; spent says how many
// attempts in how long, when the budget ran out.
func (c *Config) retry(ctx context.Context, addr string, op func(context.Context) error, again func(error) bool) (spent string, err error) {
	start := c.clock.Now()
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || !again(err) || c.retryBudget < 0 || ctx.Err() != nil {
			return "", err
		}
		delay := c.backoff.delay(attempt)
		delay += time.Duration((rand.Float64()*2 - 1) * c.backoff.Jitter * float64(delay))
		elapsed := c.clock.Now().Sub(start)
		if elapsed+delay > c.retryBudget {
			return fmt.Sprintf("%d attempts in %s", attempt, elapsed.Round(time.Millisecond)), err
		}
		ev := RetryEvent{Addr: addr, Attempt: attempt, Delay: delay, Elapsed: elapsed, Err: err}
		c.log.LogAttrs(ctx, slog.LevelInfo, "sslconn: retrying",
			slog.String("addr", addr), slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.Any("error", err))
		if c.onRetry != nil {
			c.onRetry(ev)
		}
		if serr := c.clock.Sleep(ctx, delay); serr != nil {
			return "", fmt.Errorf("sslconn: stopped retrying %s after %d attempts: %w (last error: %w)", addr, attempt, serr, err)
		}
	}
}
