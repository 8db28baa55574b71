package core

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"github.com/sslconn/sslconn/sslconn"
)

// errConnectorClosed ends the Connects of a closed connector.
var errConnectorClosed = errors.New("the connector was closed (its *sql.DB was closed)")

// Connector is the lifecycle every database/sql connector of the library
// shares around its engine's connection attempt: Connect retries the
// attempt within the budget; Close (which DB.Close calls) ends the Connects
// in progress, their retries and the attempt under way alike, and later
// Connects fail at once; and no error leaves with a secret in it.
type Connector struct {
	cfg     *Config
	addr    string
	secrets []string
	open    context.Context
	close   context.CancelCauseFunc
}

// Connector returns an open Connector to addr whose errors never show
// secrets (passwords).
func (c *Config) Connector(addr string, secrets ...string) *Connector {
	open, closeFn := context.WithCancelCause(context.Background())
	return &Connector{cfg: c, addr: addr, secrets: secrets, open: open, close: closeFn}
}

// Connect makes one new connection, retrying within the budget until it
// succeeds, an error is permanent, ctx ends or Close is called: a Connect
// that Close ended, or that came after it, is sslconn.ErrUnavailable
// saying so. more, if not nil, gives secrets the attempts met (access
// tokens), to keep out of the error as well.
//
// attempt makes one connection attempt in the mode it is given, which the
// plan for the connection picks (see plan): the configured mode, or under
// PREFERRED TLS, plaintext, or both in turn. It returns the mode the
// connection was made in (that mode, or Disabled when the driver fell back
// to plaintext within the connection, as MySQL's does) and its error,
// typed: ErrServerNoTLS and ErrServerRequiresTLS turn the plan to the
// other mode. While the address serves plaintext only, attempt also makes
// the plan's TLS rechecks, in REQUIRED, in the background, bounded by the
// handshake timeout and by Close.
func (l *Connector) Connect(ctx context.Context, attempt func(context.Context, sslconn.Mode) (driver.Conn, sslconn.Mode, error), more func() []string) (driver.Conn, error) {
	if l.open.Err() != nil {
		return nil, l.closedError(nil, nil)
	}
	ctx, release := l.Bind(ctx)
	defer release()
	var (
		conn driver.Conn
		last error // the last attempt's, if it was not cut short by ctx
	)
	err := l.cfg.Retry(ctx, l.addr, func(ctx context.Context) error {
		var err error
		conn, err = l.connectByPlan(ctx, attempt)
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err == nil {
		return conn, nil
	}
	if context.Cause(ctx) == errConnectorClosed {
		err = l.closedError(err, last)
	}
	secrets := l.secrets
	if more != nil {
		secrets = append(slices.Clip(secrets), more()...)
	}
	return nil, Redact(err, secrets...)
}

// connectByPlan is one new connection: the plan's attempts in turn, and
// its recheck when due.
func (l *Connector) connectByPlan(ctx context.Context, attempt func(context.Context, sslconn.Mode) (driver.Conn, sslconn.Mode, error)) (driver.Conn, error) {
	p := l.cfg.plan(l.cfg.Mode(), l.addr)
	var (
		conn driver.Conn
		err  error
	)
	for mode := p.first; mode != 0; {
		var made sslconn.Mode
		conn, made, err = attempt(ctx, mode)
		if made == 0 {
			panic(fmt.Sprintf("BUG: an attempt in %s reported no mode", mode))
		}
		noteMade(ctx, made, err)
		mode = p.next(made, err)
	}
	if err == nil {
		p.runRecheck(func() error {
			rctx, cancel := context.WithTimeout(context.Background(), l.cfg.s.HandshakeTimeout)
			defer cancel()
			rctx, release := l.Bind(rctx)
			defer release()
			conn, _, err := attempt(rctx, sslconn.Required)
			if conn != nil {
				conn.Close()
			}
			return err
		})
	}
	return conn, err
}

// closedError is the sslconn.ErrUnavailable error of a Connect that Close
// ended or that came after it, with the attempts err (Retry's) counts and
// the last attempt's cause (either may be nil).
func (l *Connector) closedError(err, last error) error {
	e := NewError(sslconn.ErrUnavailable, l.cfg.Mode(), l.addr, errConnectorClosed.Error(), last)
	e.Option, e.Hint = "", ""
	var se *sslconn.Error
	if errors.As(err, &se) {
		e.Attempts, e.Elapsed = se.Attempts, se.Elapsed
	}
	return e
}

// Close ends the Connector; it returns nil, for io.Closer.
func (l *Connector) Close() error {
	l.close(errConnectorClosed)
	return nil
}

// Bind returns ctx, ended also by Close, and the function that releases
// it: for work a connector does besides Connect (a search, a recheck).
func (l *Connector) Bind(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.open, func() { cancel(errConnectorClosed) })
	return ctx, func() { stop(); cancel(nil) }
}

// SQLDriver is a database/sql adapter's entry points, made from its
// NewConnector (New) and the way to its connectors' Connector (Life).
type SQLDriver[C driver.Connector] struct {
	New  func(dsn string, opts ...sslconn.Option) (C, error)
	Life func(C) *Connector
}

// Register registers drv with database/sql as name, and New as engine's
// resolver (see ResolveDSN).
func (d SQLDriver[C]) Register(name, engine string, drv interface {
	driver.Driver
	driver.DriverContext
}) {
	sql.Register(name, drv)
	RegisterResolver(engine, func(dsn string, opts ...sslconn.Option) (*Resolved, error) {
		c, err := d.New(dsn, opts...)
		if err != nil {
			return nil, err
		}
		l := d.Life(c)
		return &Resolved{Config: l.cfg, Addrs: []string{l.addr}}, nil
	})
}

// Open is driver.Driver's Open: one connection for the DSN.
func (d SQLDriver[C]) Open(dsn string) (driver.Conn, error) {
	c, err := d.New(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenDB returns a *sql.DB for the DSN.
func (d SQLDriver[C]) OpenDB(dsn string, opts ...sslconn.Option) (*sql.DB, error) {
	c, err := d.New(dsn, opts...)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}
