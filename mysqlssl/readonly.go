package mysqlssl

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sslconn/sslconn/internal/core"
)

// Read-only refusals (a primary/secondary switchover).
//
// During a switchover the old primary turns read-only, the replica is
// promoted and the endpoint moves to it; pooled connections may still reach
// the old node. A write it refuses because it is read-only (MariaDB and
// MySQL error 1290 "--read-only", 1836 ER_READ_ONLY_MODE, 1792 in a
// read-only transaction) was not applied: the server checks read_only
// before the statement changes anything, and again at commit, where it
// rolls the statement back. Outside a transaction, and with one statement
// per call (no multiStatements), the connection wrapper then
//
//  1. marks its connection bad (IsValid and ResetSession say so), so the
//     pool drops it;
//  2. waits, within the retry budget and the statement's context, until the
//     endpoint serves a writable node (a fresh connection through the
//     connector whose SELECT @@global.read_only says 0), with the
//     connector's backoff;
//  3. returns driver.ErrBadConn: database/sql retries the statement, up to
//     twice on a pooled connection and then on a new one, which reaches the
//     writable node. Connections opened before the writable node was seen
//     are dropped when next taken from the pool, so the whole pool moves.
//
// Reads are never refused and keep working on the old node until it goes
// away. Inside a transaction the original error is returned (the
// transaction is the application's to retry) and the connection is
// dropped when the transaction ends. When the wait ends without a writable
// node (budget or context) the original *mysql.MySQLError is returned.
//
// It is on by default; rejectReadOnly=false in the DSN, or
// Connector.SetRejectReadOnly(false), turns it off: the refusal then
// reaches the application and the connection stays in the pool, as with
// the bare driver. The driver's own rejectReadOnly=true (which returns
// ErrBadConn at once, a bare "driver: bad connection" when the endpoint
// has not moved yet) is replaced by this.

// SetRejectReadOnly turns the handling of writes refused by a read-only
// node on (the default) or off; see the package doc. Call it before the
// connector is used.
func (c *Connector) SetRejectReadOnly(on bool) { c.rejectRO.Store(on) }

// errStillReadOnly is a probe's answer while the endpoint's node is read-only.
var errStillReadOnly = errors.New("the node at the endpoint is read-only")

// isReadOnlyRefusal reports whether err is a server's refusal of a write
// because it is read-only.
func isReadOnlyRefusal(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1836, 1792: // ER_READ_ONLY_MODE, ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
		return true
	case 1290: // ER_OPTION_PREVENTS_STATEMENT: also --secure-file-priv and others
		return strings.Contains(me.Message, "read-only") || strings.Contains(me.Message, "read_only")
	}
	return false
}

// awaitWritable returns nil once a new connection through the connector
// reaches a writable node, within the retry budget and ctx; then it bumps
// the connector's generation, so that every older pooled connection is
// dropped when next used. The refused writes of a connector share one
// search (see writableSearch): a switchover does not cost the new primary
// a login per waiting write.
func (c *Connector) awaitWritable(ctx context.Context) error {
	c.roMu.Lock()
	s := c.roSearch
	if s == nil {
		s = &writableSearch{done: make(chan struct{})}
		c.roSearch = s
		go c.search(s)
	}
	s.waiters++
	c.roMu.Unlock()
	defer func() {
		c.roMu.Lock()
		s.waiters--
		c.roMu.Unlock()
	}()
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writableSearch is one search for a writable node, shared by the writes
// that wait for it.
type writableSearch struct {
	done    chan struct{}
	err     error // set before done is closed
	waiters int   // under Connector.roMu
}

// search probes the endpoint, as often as the engine checks a refusing
// port (every 50 ms at first, thinning out as the wait lasts), until a
// writable node answers, the retry budget runs out, no write waits any
// more, or the connector is closed.
func (c *Connector) search(s *writableSearch) {
	ctx, release := c.life.Bind(context.Background())
	defer release()
	start := time.Now()
	var err error
	for {
		pctx, cancel := context.WithTimeout(ctx, c.ssl.Settings().HandshakeTimeout)
		err = c.probeWritable(pctx)
		cancel()
		c.roMu.Lock()
		idle := s.waiters == 0
		c.roMu.Unlock()
		// Anything but an error retrying cannot fix (a login or a
		// certificate refused) is the switchover still under way: a probe
		// cut by the endpoint, or slow on a loaded machine.
		retry := !core.IsPermanent(err)
		if err == nil || !retry || idle || time.Since(start) > c.ssl.Settings().RetryBudget || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(core.PollInterval(time.Since(start)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err == nil {
		c.roGen.Add(1)
	}
	c.roMu.Lock()
	c.roSearch = nil
	s.err = err
	c.roMu.Unlock()
	close(s.done)
}

func (c *Connector) probeWritable(ctx context.Context) error {
	dc, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	q, ok := unwrapConn(dc).(driver.QueryerContext)
	if !ok {
		return errors.New("mysqlssl: the driver's connection cannot query")
	}
	rows, err := q.QueryContext(ctx, "SELECT @@global.read_only", nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		if err == io.EOF {
			err = errors.New("mysqlssl: no read_only value")
		}
		return err
	}
	var s string
	switch x := v[0].(type) {
	case []byte:
		s = string(x)
	default:
		s = fmt.Sprint(x)
	}
	if s != "0" && !strings.EqualFold(s, "OFF") {
		return errStillReadOnly
	}
	return nil
}

// mysqlDriverConn is what the driver's connection implements.
type mysqlDriverConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnBeginTx
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// roConn is a driver connection that turns read-only refusals into
// database/sql's bad-connection retry.
type roConn struct {
	c     *Connector
	inner mysqlDriverConn
	gen   int64 // the connector's generation when it was opened
	bad   atomic.Bool
	inTx  atomic.Bool
}

// wrap wraps a new driver connection; it returns conn unchanged if it is
// not the driver's.
func (c *Connector) wrap(conn driver.Conn) driver.Conn {
	in, ok := conn.(mysqlDriverConn)
	if !ok {
		return conn
	}
	return &roConn{c: c, inner: in, gen: c.roGen.Load()}
}

func unwrapConn(conn driver.Conn) driver.Conn {
	if w, ok := conn.(*roConn); ok {
		return w.inner
	}
	return conn
}

// refused handles a statement's error: see the comment at the top.
// Any other error goes through lost (lost.go).
func (w *roConn) refused(ctx context.Context, err error) error {
	if err == nil || !w.c.rejectRO.Load() || !isReadOnlyRefusal(err) {
		return lost(err)
	}
	w.bad.Store(true)
	if w.inTx.Load() || w.c.cfg.MultiStatements {
		// A transaction's earlier statements, or a batch's earlier
		// statements, may have run: only the application can redo them.
		return err
	}
	if w.c.awaitWritable(ctx) != nil {
		return err
	}
	return driver.ErrBadConn
}

func (w *roConn) stale() bool { return w.bad.Load() || w.gen < w.c.roGen.Load() }

func (w *roConn) Prepare(query string) (driver.Stmt, error) {
	return w.PrepareContext(context.Background(), query)
}

func (w *roConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := w.inner.PrepareContext(ctx, query)
	if err != nil {
		if connectionLost(err) {
			// Preparing changes nothing on the server: safe to retry
			// on another connection, as the driver itself says when
			// the request could not be written.
			return nil, driver.ErrBadConn
		}
		return nil, w.refused(ctx, err)
	}
	return &roStmt{w: w, inner: st}, nil
}

func (w *roConn) Close() error { return w.inner.Close() }

func (w *roConn) Begin() (driver.Tx, error) {
	return w.BeginTx(context.Background(), driver.TxOptions{})
}

func (w *roConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := w.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	w.inTx.Store(true)
	return &roTx{w: w, inner: tx}, nil
}

func (w *roConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := w.inner.ExecContext(ctx, query, args)
	if err != nil {
		return nil, w.refused(ctx, err)
	}
	return res, nil
}

func (w *roConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := w.inner.QueryContext(ctx, query, args)
	if err != nil {
		return nil, w.refused(ctx, err)
	}
	return wrapRows(rows), nil
}

func (w *roConn) Ping(ctx context.Context) error {
	if w.stale() {
		return driver.ErrBadConn
	}
	return w.inner.Ping(ctx)
}

func (w *roConn) ResetSession(ctx context.Context) error {
	if w.stale() {
		return driver.ErrBadConn
	}
	return w.inner.ResetSession(ctx)
}

func (w *roConn) IsValid() bool { return !w.stale() && w.inner.IsValid() }

func (w *roConn) CheckNamedValue(nv *driver.NamedValue) error { return w.inner.CheckNamedValue(nv) }

type roTx struct {
	w     *roConn
	inner driver.Tx
}

func (t *roTx) Commit() error {
	defer t.w.inTx.Store(false)
	return lost(t.inner.Commit())
}

func (t *roTx) Rollback() error {
	defer t.w.inTx.Store(false)
	return t.inner.Rollback()
}

type roStmt struct {
	w     *roConn
	inner driver.Stmt
}

func (s *roStmt) Close() error  { return s.inner.Close() }
func (s *roStmt) NumInput() int { return s.inner.NumInput() }

//lint:ignore SA1019 driver.Stmt requires Exec and Query.
func (s *roStmt) Exec(args []driver.Value) (driver.Result, error) { return s.inner.Exec(args) }

//lint:ignore SA1019 driver.Stmt requires Exec and Query.
func (s *roStmt) Query(args []driver.Value) (driver.Rows, error) { return s.inner.Query(args) }

func (s *roStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.inner.(driver.StmtExecContext).ExecContext(ctx, args)
	if err != nil {
		return nil, s.w.refused(ctx, err)
	}
	return res, nil
}

func (s *roStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.inner.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, s.w.refused(ctx, err)
	}
	return wrapRows(rows), nil
}

func (s *roStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.inner.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
