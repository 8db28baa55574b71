package sslconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func TestRetry(t *testing.T) {
	tests := []struct {
		name       string
		errs       []error // returned by successive attempts; then success
		budget     time.Duration
		wantErr    error
		wantCalls  int
		wantSleeps int
	}{
		{name: "succeeds at once", wantCalls: 1},
		{name: "refused twice then up", errs: []error{errRefused, errRefused}, wantCalls: 3, wantSleeps: 2},
		{name: "certificate error stops at once", errs: []error{NewError(ErrUnknownAuthority, VerifyCA, "h", "", nil)}, wantErr: ErrUnknownAuthority, wantCalls: 1},
		{name: "marked permanent stops at once", errs: []error{Permanent(errors.New("access denied"))}, wantCalls: 1},
		{name: "budget spent", errs: repeat(errRefused, 1000), budget: 10 * time.Second, wantErr: syscall.ECONNREFUSED, wantCalls: 9, wantSleeps: 8}, // 0.1+0.2+0.4+0.8+1.6+2+2+2 = 9.1s; one more 2s would pass 10s
		{name: "retrying disabled", errs: []error{errRefused}, budget: -1, wantErr: syscall.ECONNREFUSED, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1e9, 0)}
			var events []RetryEvent
			opts := []Option{withClock(clk), WithRetryCallback(func(e RetryEvent) { events = append(events, e) }),
				WithBackoff(Backoff{Jitter: -1})}
			if tt.budget != 0 {
				opts = append(opts, WithRetryBudget(tt.budget))
			}
			cfg, err := New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			err = cfg.Retry(context.Background(), "db:3306", func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && len(tt.errs) > 0 && !IsPermanent(tt.errs[0]) && err != nil {
				t.Fatalf("err = %v", err)
			}
			if calls != tt.wantCalls || len(clk.sleeps) != tt.wantSleeps || len(events) != tt.wantSleeps {
				t.Fatalf("calls %d sleeps %d events %d; want %d, %d", calls, len(clk.sleeps), len(events), tt.wantCalls, tt.wantSleeps)
			}
		})
	}
}

// TestBackoffDelays pins the documented delay table (no jitter).
func TestBackoffDelays(t *testing.T) {
	b := Backoff{}.withDefaults()
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := b.delay(i + 1); got != w*time.Millisecond {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}

// TestRetryJitterAndEvents: delays stay within ±20% and the events say so.
func TestRetryJitterAndEvents(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	var events []RetryEvent
	cfg, _ := New(withClock(clk), WithRetryCallback(func(e RetryEvent) { events = append(events, e) }))
	n := 0
	err := cfg.Retry(context.Background(), "db:3306", func(context.Context) error {
		if n++; n < 8 {
			return errRefused
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		base := Backoff{}.withDefaults().delay(i + 1)
		if e.Attempt != i+1 || e.Delay < base*8/10 || e.Delay > base*12/10 || e.Addr != "db:3306" || !errors.Is(e.Err, syscall.ECONNREFUSED) {
			t.Errorf("event %d: %+v (base %v)", i, e, base)
		}
		if e.Delay != clk.sleeps[i] {
			t.Errorf("slept %v, announced %v", clk.sleeps[i], e.Delay)
		}
	}
}

func TestRetryContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cfg, _ := New()
	start := time.Now()
	err := cfg.Retry(ctx, "db:3306", func(context.Context) error { return errRefused })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want the deadline and the last cause", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v after a 300ms deadline", d)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = fmt.Errorf("attempt %d: %w", i, err)
	}
	return out
}
