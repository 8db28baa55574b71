package core

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
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

// Connect runs attempt, one connection attempt, until it succeeds, its
// error is permanent, the retry budget is spent, ctx ends or Close is
// called: a Connect that Close ended, or that came after it, is
// sslconn.ErrUnavailable saying so. more, if not nil, gives secrets the
// attempts met (access tokens), to keep out of the error as well.
func (l *Connector) Connect(ctx context.Context, attempt func(context.Context) (driver.Conn, error), more func() []string) (driver.Conn, error) {
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
		conn, err = attempt(ctx)
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
// NewConnector (New) and the way to its connectors' Config.
type SQLDriver[C driver.Connector] struct {
	New    func(dsn string, opts ...sslconn.Option) (C, error)
	Config func(C) *Config
}

// Register registers drv with database/sql as name, and New as engine's
// resolver (see ResolveDSN).
func (d SQLDriver[C]) Register(name, engine string, drv interface {
	driver.Driver
	driver.DriverContext
}) {
	sql.Register(name, drv)
	RegisterResolver(engine, func(dsn string, opts ...sslconn.Option) (*Config, error) {
		c, err := d.New(dsn, opts...)
		if err != nil {
			return nil, err
		}
		return d.Config(c), nil
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
