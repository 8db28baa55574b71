package mysqlssl

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Connections lost under a statement (a restart, or a switchover's
// endpoint closing its connections).
//
// go-sql-driver/mysql tells database/sql that a statement can be retried
// only when nothing of it was written: a write that fails before its first
// byte (the library's closed-peer check, sslconn.ErrNotSent, makes it so
// for a connection the server has already closed) comes back as
// driver.ErrBadConn, and database/sql retries it on another connection.
// Once the statement went out, a connection that breaks before the answer
// is reported as the driver's ErrInvalidConn ("invalid connection"; the
// cause is only logged), or the network's error when a later packet of the
// request failed. Whether the server ran the statement is then unknown:
// the wrapper reports those as sslconn.ErrOutcomeUnknown (the text keeps
// the driver's), never replays them, and never lets the driver's raw error
// through.

// lost returns err typed as sslconn.ErrOutcomeUnknown when it says the
// connection broke after the request was sent, and err unchanged otherwise
// (nil, driver.ErrBadConn, errors already typed, the server's own errors,
// an ended context). A bare io.EOF is not among them: it ends a result
// set.
func lost(err error) error {
	if !connectionLost(err) {
		return err
	}
	return core.OutcomeUnknown(err)
}

// connectionLost reports whether err is the driver's or the network's
// report of a connection that broke under a request.
func connectionLost(err error) bool {
	var me *mysql.MySQLError
	switch {
	case err == nil,
		errors.Is(err, driver.ErrBadConn), errors.Is(err, driver.ErrSkip),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sslconn.ErrNotSent), errors.Is(err, sslconn.ErrOutcomeUnknown),
		errors.As(err, &me):
		return false
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, mysql.ErrPktSync),
		errors.Is(err, mysql.ErrPktSyncMul), errors.Is(err, mysql.ErrMalformPkt),
		errors.Is(err, io.ErrShortWrite), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// mysqlRows is what the driver's result sets implement.
type mysqlRows interface {
	driver.Rows
	driver.RowsNextResultSet
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// lostRows types the errors of a result set whose connection breaks while
// it is read.
type lostRows struct{ mysqlRows }

// wrapRows wraps the driver's result set; other values pass unchanged.
func wrapRows(r driver.Rows) driver.Rows {
	if mr, ok := r.(mysqlRows); ok {
		return lostRows{mr}
	}
	return r
}

func (r lostRows) Next(dest []driver.Value) error { return lost(r.mysqlRows.Next(dest)) }
func (r lostRows) NextResultSet() error           { return lost(r.mysqlRows.NextResultSet()) }
