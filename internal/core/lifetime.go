package core

import (
	"context"
	"errors"

	"github.com/sslconn/sslconn/sslconn"
)

// errConnectorClosed ends the Connects of a closed connector.
var errConnectorClosed = errors.New("the connector was closed (its *sql.DB was closed)")

// Lifetime is a database/sql Connector's: Close (which DB.Close calls)
// ends the Connects in progress, their retries and the attempt under way
// alike, and later Connects fail at once. The zero value is never closed.
type Lifetime struct {
	open  context.Context
	close context.CancelCauseFunc
}

// NewLifetime returns an open Lifetime.
func NewLifetime() *Lifetime {
	open, closeFn := context.WithCancelCause(context.Background())
	return &Lifetime{open: open, close: closeFn}
}

// Close ends the Lifetime.
func (l *Lifetime) Close() {
	if l != nil && l.close != nil {
		l.close(errConnectorClosed)
	}
}

// Closed reports whether Close was called.
func (l *Lifetime) Closed() bool { return l != nil && l.open != nil && l.open.Err() != nil }

// Bind returns ctx, ended also by Close, and the function that releases it.
func (l *Lifetime) Bind(ctx context.Context) (context.Context, func()) {
	if l == nil || l.open == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.open, func() { cancel(errConnectorClosed) })
	return ctx, func() { stop(); cancel(nil) }
}

// Ended returns, for a Connect whose ctx (from Bind) Close ended, the
// error ClosedError makes; else err.
func (c *Config) Ended(ctx context.Context, addr string, err, last error) error {
	if context.Cause(ctx) != errConnectorClosed {
		return err
	}
	return c.ClosedError(addr, err, last)
}

// ClosedError is the sslconn.ErrUnavailable error of a Connect that Close
// ended or that came after it, with the attempts err (Retry's) counts and
// the last attempt's cause (either may be nil).
func (c *Config) ClosedError(addr string, err, last error) error {
	e := NewError(sslconn.ErrUnavailable, c.Mode(), addr, errConnectorClosed.Error(), last)
	e.Option, e.Hint = "", ""
	var se *sslconn.Error
	if errors.As(err, &se) {
		e.Attempts, e.Elapsed = se.Attempts, se.Elapsed
	}
	return e
}
