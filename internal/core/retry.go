package core

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// firstContactBudget bounds the retrying of an address that has never
// completed a connection for this Config, unless WithRetryBudget was given:
// a typo in the host or port, or a firewall, should surface in seconds,
// while a server that has answered before gets the whole default budget to
// come back from a restart.
const firstContactBudget = 30 * time.Second

// answeredSet is the set of addresses that completed a connection.
type answeredSet struct{ m sync.Map }

// markAnswered records that addr completed a connection.
func (c *Config) markAnswered(addr string) { c.answered.m.Store(addr, struct{}{}) }

func (c *Config) hasAnswered(addr string) bool {
	_, ok := c.answered.m.Load(addr)
	return ok
}

// Retry runs connect until it succeeds, returns a permanent error (see
// IsPermanent), the retry budget is spent, or ctx ends. A success marks
// addr as answered. Each retry is logged and passed to the retry callback.
// When the budget or ctx ends, the error is sslconn.ErrUnavailable with
// mode, addr, the attempts and the last cause. It is meant for new
// connections only: an operation whose outcome is unknown must never be
// handed to Retry.
//
// The new connection is recorded in the Config's telemetry: its span,
// under ctx's, with one per attempt, and its outcome in the metrics.
func (c *Config) Retry(ctx context.Context, addr string, connect func(context.Context) error) error {
	ctx, rec := c.tel.connecting(ctx, c.Mode(), addr)
	err := c.Explain(c.retryConnect(ctx, addr, connect))
	rec.done(ctx, err)
	return err
}

func (c *Config) retryConnect(ctx context.Context, addr string, connect func(context.Context) error) error {
	r, err := c.retry(ctx, addr, connect, func(err error) bool { return !IsPermanent(err) }, true)
	if err == nil {
		c.markAnswered(addr)
		return nil
	}
	if !r.exhausted {
		if cerr := ctx.Err(); cerr != nil && !IsPermanent(err) {
			// The caller's context ended before any typed outcome.
			return c.ContextEnded(addr, r.attempts, r.elapsed, cerr, err)
		}
		return err
	}
	detail := "the retry budget ran out"
	if c.s.RetryBudget < 0 {
		detail = "retrying is off"
	}
	if r.capped {
		detail = "the address has not answered since the client was created (retried for at most " + firstContactBudget.String() + "); check the host and port"
	}
	return c.unavailable(addr, r, detail, err)
}

// ContextEnded is the sslconn.ErrUnavailable error for connection attempts
// to addr that the caller's context (cerr) ended: it matches cerr and keeps
// the last attempt's error (last, may be nil) for errors.Is and errors.As.
func (c *Config) ContextEnded(addr string, attempts int, elapsed time.Duration, cerr, last error) error {
	cause := cerr
	if last != nil && !errors.Is(last, cerr) {
		cause = &ctxEnded{last: last, ctx: cerr}
	}
	return c.unavailable(addr, retried{attempts: max(attempts, 1), elapsed: elapsed}, "the context ended while connecting ("+cerr.Error()+")", cause)
}

// ctxEnded is the last attempt's error, also matching the context's.
type ctxEnded struct{ last, ctx error }

func (e *ctxEnded) Error() string   { return e.last.Error() }
func (e *ctxEnded) Unwrap() []error { return []error{e.last, e.ctx} }

func (c *Config) unavailable(addr string, r retried, detail string, last error) error {
	e := NewError(sslconn.ErrUnavailable, c.Mode(), addr, detail, last)
	e.Attempts, e.Elapsed = r.attempts, r.elapsed
	return e
}

// RetrySafe runs op again while it fails with an error that safe says
// proves the operation was not executed (ErrNotSent, a Redis LOADING
// reply), with the same budget, backoff, log and callback as Retry. Any
// other result, and the last error when the budget is spent, is returned
// unchanged, so callers comparing errors with == still can.
func (c *Config) RetrySafe(ctx context.Context, addr string, op func(context.Context) error, safe func(error) bool) error {
	_, err := c.retry(ctx, addr, op, safe, false)
	return err
}

// retried says how a retry loop ended: after how many attempts over how
// long; capped, that the budget was cut to firstContactBudget; exhausted,
// that the budget ran out (not ctx, not a permanent error).
type retried struct {
	attempts          int
	elapsed           time.Duration
	capped, exhausted bool
}

// retry is the loop behind Retry and RetrySafe.
func (c *Config) retry(ctx context.Context, addr string, op func(context.Context) error, again func(error) bool, connecting bool) (retried, error) {
	start := c.s.Clock.Now()
	var r retried
	budget := c.s.RetryBudget
	if connecting && !c.s.RetryBudgetSet && budget > firstContactBudget && !c.hasAnswered(addr) {
		budget, r.capped = firstContactBudget, true
	}
	var rec *connectRecord
	if connecting {
		rec = recordOf(ctx)
	}
	until := start.Add(budget) // when sleepOrAccept runs, budget >= 0
	release := func() {}
	for attempt := 1; ; attempt++ {
		actx, span := rec.attempt(ctx, attempt)
		var via *attemptVia
		if connecting {
			via = &attemptVia{}
			actx = withVia(actx, via)
		}
		err := op(actx)
		release()
		rec.attempted(span, err)
		r.attempts, r.elapsed = attempt, c.s.Clock.Now().Sub(start)
		if err == nil || !again(err) || ctx.Err() != nil {
			return r, err
		}
		delay := c.s.Delay(attempt)
		if budget < 0 || r.elapsed+delay > budget {
			r.exhausted = true
			return r, err
		}
		// The first retry is news; the rest of a long outage is detail,
		// with a reminder every tenth attempt.
		level := slog.LevelDebug
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelInfo
		}
		c.s.Logger.LogAttrs(ctx, level, "sslconn: retrying",
			slog.String("addr", addr), slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.Any("error", err))
		c.tel.retrying(ctx, addr, err, connecting)
		if c.s.OnRetry != nil {
			c.s.OnRetry(sslconn.RetryEvent{Addr: addr, Attempt: attempt, Delay: delay, Elapsed: r.elapsed, Err: err})
		}
		var serr error
		if connecting {
			release, serr = c.sleepOrAccept(ctx, err, delay, addr, via, until)
		} else {
			serr = c.s.Clock.Sleep(ctx, delay)
		}
		if serr != nil {
			r.elapsed = c.s.Clock.Now().Sub(start)
			return r, err
		}
	}
}
