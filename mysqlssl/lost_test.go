package mysqlssl

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func TestLostClassification(t *testing.T) {
	for _, tc := range []struct {
		err  error
		lost bool
	}{
		{nil, false},
		{driver.ErrBadConn, false},
		{driver.ErrSkip, false},
		{io.EOF, false}, // the end of a result set
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{&mysql.MySQLError{Number: 1290, Message: "read-only"}, false},
		{core.NotSent(&net.TCPConn{}, io.EOF), false},
		{core.OutcomeUnknown(io.EOF), false}, // already typed
		{mysql.ErrInvalidConn, true},
		{fmt.Errorf("x: %w", mysql.ErrInvalidConn), true},
		{mysql.ErrPktSync, true},
		{io.ErrShortWrite, true},
		{io.ErrUnexpectedEOF, true},
		{&net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
	} {
		got := lost(tc.err)
		if isLost := got != tc.err; isLost != tc.lost {
			t.Errorf("lost(%v) = %v; typed: %t, want %t", tc.err, got, isLost, tc.lost)
		}
		if tc.lost && !errors.Is(got, sslconn.ErrOutcomeUnknown) {
			t.Errorf("lost(%v) = %v, want ErrOutcomeUnknown", tc.err, got)
		}
	}
}

// TestCutStatement: a statement whose connection the endpoint cuts while
// the server runs it comes back as ErrOutcomeUnknown (the driver's
// "invalid connection" in the text), for a write and a read alike; one
// issued on a pooled connection the endpoint had already cut is retried on
// a new connection, transparently (the switchover flake of #24, made
// deterministic: a SLEEP keeps the statement in flight at the cut).
func TestCutStatement(t *testing.T) {
	certsForServers.Get(t) // skips with -short
	s, err := testenv.StartMariaDB(testenv.TLS{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(t, "MariaDB", s.Stop)
	fwd, err := testenv.StartForwarder(testenv.Addr(s.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(t, "the forwarder", fwd.Close)
	db, err := Open(dsn(testenv.MySQLUser, testenv.MySQLPassword, "127.0.0.1", fwd.Port, "ssl-mode=DISABLED"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"exec", func() error { _, err := db.ExecContext(ctx, "DO SLEEP(5)"); return err }},
		{"query", func() error { var n int; return db.QueryRowContext(ctx, "SELECT SLEEP(5)").Scan(&n) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := make(chan testenv.Cut, 1)
			go func() {
				time.Sleep(300 * time.Millisecond)
				cut <- fwd.Cut()
			}()
			start := time.Now()
			err := tc.run()
			c := <-cut
			if !errors.Is(err, sslconn.ErrOutcomeUnknown) {
				t.Fatalf("after %v, the cut closing %d connection(s): %v, want ErrOutcomeUnknown", time.Since(start), c.Closed, err)
			}
			if c.Closed == 0 || !c.Spans(start, time.Now()) {
				t.Errorf("the cut %+v did not close the statement's connection", c)
			}
		})
	}
	// An idle pooled connection, cut: the next statement is refused
	// before it is sent and retried on a new connection.
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if c := fwd.Cut(); c.Closed == 0 {
		t.Fatalf("no pooled connection to cut")
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := db.ExecContext(ctx, "DO 1"); err != nil {
		t.Fatalf("a statement on a pooled connection cut before it was sent: %v", err)
	}
}
