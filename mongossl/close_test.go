package mongossl

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// TestDisconnectStopsDials: Disconnect, while an operation waits for a
// server that is down, stops the dialer's retries at once: the driver
// cancels the contexts of the dials it started (the monitor's, the
// pool's), and the retry loop honours them. Disconnect returns at once, no
// new connection attempt follows, and no goroutine is left behind. (The
// operation itself waits for its server selection timeout: the driver's
// server selection does not end with Disconnect.)
func TestDisconnectStopsDials(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	addr := matrix.ClosedAddr(t)
	var dials matrix.DialCounter
	base := runtime.NumGoroutine()
	co, err := ClientOptions("mongodb://"+addr+"/?directConnection=true&serverSelectionTimeoutMS=3000", sslconn.WithDialer(dials.Dial),
		sslconn.WithRetryBudget(time.Minute),
		sslconn.WithBackoff(sslconn.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongo.Connect(co) //v1:replace mongo.Connect(co) => mongo.Connect(context.Background(), co)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Ping(context.Background(), nil) }()
	if !matrix.WaitFor(10*time.Second, func() bool { return dials.N() >= 5 }) {
		t.Fatalf("%d connection attempts in 10 s, want 5", dials.N())
	}
	closed := time.Now()
	if err := c.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Errorf("Disconnect took %v", d)
	}
	time.Sleep(200 * time.Millisecond) // an attempt already under way
	n0 := dials.N()
	time.Sleep(time.Second)
	if n := dials.N(); n != n0 {
		t.Errorf("%d new connection attempt(s) in the second after Disconnect", n-n0)
	}
	select {
	case err := <-done:
		t.Logf("Ping returned %v after Disconnect: %v", time.Since(closed).Round(time.Millisecond), err)
		if err == nil {
			t.Error("Ping succeeded against a closed port")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ping still waits 10 s after Disconnect")
	}
	if !matrix.WaitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 5 s after Disconnect, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
	}
}
