package mssqlssl

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// tcpCounter is sslconn.WithDialer's dial, counting every TCP connection
// attempt: the connector's retries, and the engine's checks whether a
// refusing port accepts again.
type tcpCounter struct{ n atomic.Int64 }

func (c *tcpCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// TestCloseStopsConnects: closing the *sql.DB while a Ping waits for a
// connection to a server that is down stops the connector at once: the
// Ping returns ErrUnavailable saying the connector was closed, no new
// connection attempt follows, no goroutine is left behind, and a later
// Connect fails at once.
func TestCloseStopsConnects(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	addr := matrix.ClosedAddr(t)
	var dials tcpCounter
	base := runtime.NumGoroutine()
	c, err := NewConnector("sqlserver://sa:pw@"+addr+"?database=master", sslconn.WithDialer(dials.dial),
		sslconn.WithRetryBudget(time.Minute),
		sslconn.WithBackoff(sslconn.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	done := make(chan error, 1)
	go func() { done <- db.PingContext(context.Background()) }()
	if !waitFor(10*time.Second, func() bool { return dials.n.Load() >= 5 }) {
		t.Fatalf("%d connection attempts in 10 s, want 5", dials.n.Load())
	}
	closed := time.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("Ping returned %v after Close: %v", time.Since(closed).Round(time.Millisecond), err)
		if !errors.Is(err, sslconn.ErrUnavailable) || !strings.Contains(err.Error(), "connector was closed") {
			t.Errorf("%v, want ErrUnavailable saying the connector was closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ping still waits 5 s after Close")
	}
	time.Sleep(200 * time.Millisecond) // an attempt already under way
	n0 := dials.n.Load()
	time.Sleep(time.Second)
	if n := dials.n.Load(); n != n0 {
		t.Errorf("%d new connection attempt(s) in the second after Close", n-n0)
	}
	if !waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 5 s after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
	}
	start := time.Now()
	_, err = c.Connect(context.Background())
	if !errors.Is(err, sslconn.ErrUnavailable) || !strings.Contains(err.Error(), "connector was closed") || time.Since(start) > time.Second {
		t.Errorf("Connect after Close: %v after %v, want ErrUnavailable at once", err, time.Since(start))
	}
	if n := dials.n.Load(); n != n0 {
		t.Errorf("Connect after Close dialed")
	}
}
