package core

import (
	"context"
	"time"

	isettings "github.com/sslconn/sslconn/internal/settings"
)

// fakeClock advances only when slept on, so retry tests are instant and exact.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeClock) Now() time.Time { return f.now }

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func withClock(c *fakeClock) Option {
	return func(s *settings) { s.Clock = isettings.Clock{Now: c.Now, Sleep: c.Sleep} }
}
