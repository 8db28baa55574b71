package redisssl

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

type redisWorkload struct{ c *redis.Client }

// Write appends to a list, so a write applied twice shows twice.
func (w redisWorkload) Write(ctx context.Context, id int64) error {
	return w.c.RPush(ctx, "writes", id).Err()
}

func (w redisWorkload) Read(ctx context.Context) error {
	err := w.c.Get(ctx, "absent").Err()
	if err == redis.Nil {
		return nil
	}
	return err
}

func (w redisWorkload) Count(ctx context.Context) (map[int64]int, error) {
	vals, err := w.c.LRange(ctx, "writes", 0, -1).Result()
	if err != nil {
		return nil, err
	}
	counts := map[int64]int{}
	for _, v := range vals {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, err
		}
		counts[id]++
	}
	return counts, nil
}

func (w redisWorkload) Status(ctx context.Context) (sslconn.Status, error) { return Verify(ctx, w.c) }
func (w redisWorkload) Close() error                                       { return w.c.Close() }

var (
	// durableServer keeps its data across restarts; TestRestarts takes it
	// through every SSL-triggered restart, from and back to no TLS.
	durableServer = testenv.NewLazy(func() (*testenv.Server, error) {
		return testenv.StartRedisDurable(testenv.TLS{Off: true})
	})
	// restartCluster is a three-node TLS cluster of which
	// TestClusterNodeRestart restarts one node (TestCluster's stays up).
	restartCluster = testenv.NewLazy(func() ([]*testenv.Server, error) {
		c, err := newCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartRedisCluster(3, testenv.Scenario(c, 1), c)
	})
)

// TestRestarts: a workload rides out every SSL-triggered restart, TLS
// served on the one port the client knows; see matrix.RunRestarts.
func TestRestarts(t *testing.T) {
	certs, s := lazyCerts.Get(t), durableServer.Get(t)
	// The server is shared by runs of this test (-count): start from no
	// TLS and no writes, as a fresh one would.
	if s.TLS != (testenv.TLS{Off: true}) {
		if err := s.Restart(testenv.TLS{Off: true}); err != nil {
			t.Fatal(err)
		}
	}
	{
		c, err := NewClient(redisURL("localhost", s.Port, "ssl-mode=DISABLED"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Del(context.Background(), "writes").Err()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	open := func(mode sslconn.Mode, ca string) (matrix.Workload, error) {
		c, err := NewClient(redisURL("localhost", s.Port, ""), sslconn.WithMode(mode), sslconn.WithCAFile(ca))
		if err != nil {
			return nil, err
		}
		return redisWorkload{c}, nil
	}
	matrix.RunRestarts(t, certs, true, open, s.Stop,
		func(to testenv.TLS) error { s.TLS = to; return s.Start() })
}

// TestClusterNodeRestart: one node of the TLS cluster restarts while a
// client writes keys across all slots; the client follows it back: writes
// are acknowledged before the stop and after the start (every key, on
// every node, once again), no acknowledged write is lost or doubled, a
// write with an unknown outcome is applied at most once, and the only
// failures are writes in flight when the node stopped, typed
// sslconn.ErrOutcomeUnknown (matrix.Excuse).
func TestClusterNodeRestart(t *testing.T) {
	certs, nodes := lazyCerts.Get(t), restartCluster.Get(t)
	// Keys of their own per run (-count reuses the cluster).
	run := time.Now().UnixNano()
	seed := fmt.Sprintf("redis://:%s@127.0.0.1:%d?ssl-mode=VERIFY_IDENTITY&ssl-ca=%s", testenv.RedisPassword, nodes[0].TLSPort, certs.CA)
	c, err := NewClusterClient(seed)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type write struct {
		key        string
		start, end time.Time
		err        error
	}
	var (
		mu     sync.Mutex
		writes []write
		upAt   atomic.Int64 // unix nanos when the node was back
		after  atomic.Int32 // writes acknowledged that started after it
	)
	// Enough writes after the restart that every node's slots were
	// written (keys hash across all 16384 slots).
	const afterWanted = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil && after.Load() < afterWanted; i++ {
			w := write{key: fmt.Sprintf("k:%d:%d", run, i), start: time.Now()}
			w.err = c.Incr(ctx, w.key).Err()
			w.end = time.Now()
			if w.err == nil && upAt.Load() != 0 && w.start.UnixNano() > upAt.Load() {
				after.Add(1)
			}
			mu.Lock()
			writes = append(writes, w)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	stopBegin := time.Now()
	if err := nodes[2].Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	time.Sleep(time.Second)
	if err := nodes[2].Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	upAt.Store(up.UnixNano())
	select {
	case <-done:
	case <-time.After(time.Minute):
		cancel()
		<-done
		t.Fatalf("the writer was still running a minute after the node was back")
	}
	if n := after.Load(); n < afterWanted {
		t.Fatalf("only %d writes acknowledged after the node was back (%v), want %d", n, ctx.Err(), afterWanted)
	}
	stop := []testenv.Cut{{Moved: stopBegin, Begin: stopBegin, End: stoppedAt, Closed: 1}}
	var before, failed int
	for _, w := range writes {
		if w.err == nil && w.end.Before(stopBegin) {
			before++
		}
		if w.err == nil {
			continue
		}
		failed++
		if why := matrix.Excuse(w.err, w.start, w.end, stop); why != "" {
			t.Errorf("INCR %s started at %v from the stop's beginning (the stop took %v), failed after %v: %s: %v", w.key,
				w.start.Sub(stopBegin).Round(time.Millisecond), stoppedAt.Sub(stopBegin).Round(time.Millisecond),
				w.end.Sub(w.start).Round(time.Millisecond), why, w.err)
		}
	}
	if before == 0 {
		t.Errorf("no write was acknowledged before the node stopped")
	}
	if failed > 1 {
		t.Errorf("%d writes failed; one writer has at most one in flight at the stop", failed)
	}
	for _, w := range writes {
		v, err := c.Get(ctx, w.key).Int()
		switch {
		case w.err == nil && (err != nil || v != 1):
			t.Errorf("acknowledged %s = %d, %v; want 1 (an INCR applied once)", w.key, v, err)
		case w.err != nil && v > 1:
			t.Errorf("%s, whose INCR had an unknown outcome, = %d; want at most 1", w.key, v)
		}
	}
	t.Logf("%d writes, %d acknowledged before the stop, %d after the node was back, %d failed", len(writes), before, after.Load(), failed)
}
