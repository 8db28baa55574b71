package matrix

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// DialCounter is sslconn.WithDialer's dial, counting every TCP connection
// attempt a client makes: its retries, and the engine's checks whether a
// refusing port accepts again.
type DialCounter struct{ n atomic.Int64 }

// Dial counts and dials.
func (c *DialCounter) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// N is the number of attempts so far.
func (c *DialCounter) N() int64 { return c.n.Load() }

// WaitFor polls cond for up to d.
func WaitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// CheckQuiet fails t when, after a client was closed, a connection attempt
// starts (after 200 ms for one already under way) within a second, or the
// goroutines are not back to base within 5 s. It returns the attempts
// counted.
func CheckQuiet(t testing.TB, dials *DialCounter, base int) int64 {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	n0 := dials.N()
	time.Sleep(time.Second)
	if n := dials.N(); n != n0 {
		t.Errorf("%d new connection attempt(s) in the second after Close", n-n0)
	}
	if !WaitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 5 s after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
	}
	return dials.N()
}

// closeWithin bounds how long after Close a Ping waiting for a connection
// returns.
const closeWithin = 500 * time.Millisecond

// RunCloseStops checks a database/sql connector against a server that is
// down: closing the *sql.DB while a Ping waits for a connection stops the
// connector at once (the Ping returns ErrUnavailable saying the connector
// was closed), no connection attempt follows, no goroutine is left
// behind, and a later Connect fails at once without dialing. newConnector
// makes the connector for addr with the given options.
func RunCloseStops(t *testing.T, newConnector func(addr string, opts ...sslconn.Option) (driver.Connector, error)) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	addr := ClosedAddr(t)
	var dials DialCounter
	base := runtime.NumGoroutine()
	c, err := newConnector(addr, sslconn.WithDialer(dials.Dial), sslconn.WithRetryBudget(time.Minute),
		sslconn.WithBackoff(sslconn.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	done := make(chan error, 1)
	go func() { done <- db.PingContext(context.Background()) }()
	if !WaitFor(10*time.Second, func() bool { return dials.N() >= 5 }) {
		t.Fatalf("%d connection attempts in 10 s, want 5", dials.N())
	}
	closed := time.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		took := time.Since(closed)
		t.Logf("Ping returned %v after Close: %v", took.Round(time.Millisecond), err)
		if !errors.Is(err, sslconn.ErrUnavailable) || !strings.Contains(err.Error(), "connector was closed") {
			t.Errorf("%v, want ErrUnavailable saying the connector was closed", err)
		}
		// "At once": Close cancels the retry loop's wait and the attempt
		// under way; milliseconds, with room for a slow machine.
		if took > closeWithin {
			t.Errorf("Ping returned %v after Close, want within %v", took.Round(time.Millisecond), closeWithin)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ping still waits 5 s after Close")
	}
	n0 := CheckQuiet(t, &dials, base)
	start := time.Now()
	_, err = c.Connect(context.Background())
	if !errors.Is(err, sslconn.ErrUnavailable) || !strings.Contains(err.Error(), "connector was closed") || time.Since(start) > time.Second {
		t.Errorf("Connect after Close: %v after %v, want ErrUnavailable at once", err, time.Since(start))
	}
	if dials.N() != n0 {
		t.Errorf("Connect after Close dialed")
	}
}
