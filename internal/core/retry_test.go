package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
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
		{name: "budget spent", errs: repeat(errRefused, 1000), budget: 10 * time.Second, wantErr: ErrUnavailable, wantCalls: 9, wantSleeps: 8},                                   // 0.1+0.2+0.4+0.8+1.6+2+2+2 = 9.1s; one more 2s would pass 10s
		{name: "never answered: first-contact budget", errs: repeat(errRefused, 1000), wantErr: ErrUnavailable, wantCalls: 19, wantSleeps: 18},                                   // 3.1s, then 2s each up to 30s
		{name: "an explicit budget applies whole, answered or not", errs: repeat(errRefused, 1000), budget: time.Minute, wantErr: ErrUnavailable, wantCalls: 34, wantSleeps: 33}, // 3.1s, then 2s each up to 60s
		{name: "retrying disabled", errs: []error{errRefused}, budget: -1, wantErr: ErrUnavailable, wantCalls: 1},
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
			cfg, err := newConfig(opts...)
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

// TestRetryJitterAndEvents: delays stay within ±20% and the events say so.
func TestRetryJitterAndEvents(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	var events []RetryEvent
	cfg, _ := newConfig(withClock(clk), WithRetryCallback(func(e RetryEvent) { events = append(events, e) }))
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
		base := defaultDelays[min(i, len(defaultDelays)-1)]
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
	cfg, _ := newConfig(WithMode(VerifyCA))
	start := time.Now()
	err := cfg.Retry(ctx, "db:3306", func(context.Context) error { return errRefused })
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) ||
		!errors.As(err, &e) || e.Mode != VerifyCA || e.Host != "db:3306" || e.Attempts < 1 {
		t.Fatalf("err = %v, want ErrUnavailable with the deadline, the last cause, mode, host and attempts", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v after a 300ms deadline", d)
	}
}

var defaultDelays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
	800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second}

// TestUnavailable: a server that stays down ends in ErrUnavailable naming
// the mode, the address, the attempts and the last cause; an address that
// has answered before gets the whole budget, one that never has 30 seconds.
func TestUnavailable(t *testing.T) {
	for _, answered := range []bool{false, true} {
		t.Run(fmt.Sprintf("answered=%t", answered), func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1e9, 0)}
			cfg, err := newConfig(withClock(clk), WithMode(VerifyIdentity), WithBackoff(Backoff{Jitter: -1}))
			if err != nil {
				t.Fatal(err)
			}
			if answered {
				if err := cfg.Retry(context.Background(), "db:3306", func(context.Context) error { return nil }); err != nil {
					t.Fatal(err)
				}
			}
			start := clk.now
			err = cfg.Retry(context.Background(), "db:3306", func(context.Context) error { return errRefused })
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrUnavailable || e.Mode != VerifyIdentity || e.Host != "db:3306" ||
				e.Attempts < 2 || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("err = %#v", err)
			}
			for _, s := range []string{"VERIFY_IDENTITY", "db:3306", "attempt", "connection refused", "WithRetryBudget"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %s", err, s)
				}
			}
			spent := clk.now.Sub(start)
			want := firstContactBudget
			if answered {
				want = 3 * time.Minute
			}
			if spent > want || spent < want-3*time.Second {
				t.Errorf("retried for %v, want about %v", spent, want)
			}
			if !answered && !strings.Contains(err.Error(), "has not answered") {
				t.Errorf("%q does not say the address never answered", err)
			}
		})
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = fmt.Errorf("attempt %d: %w", i, err)
	}
	return out
}
