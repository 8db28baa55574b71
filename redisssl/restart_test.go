package redisssl

import (
	"context"
	"fmt"
	"strconv"
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
// client writes keys across all slots; the client follows it back, and no
// acknowledged write is lost or doubled; a write fails only if it was in
// flight at the stop, and then as a documented kind.
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
	acked := map[string]bool{}
	var errs errorTally
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			default:
			}
			key := fmt.Sprintf("k:%d:%d", run, i)
			if err := c.Incr(ctx, key).Err(); err == nil {
				acked[key] = true
			} else {
				errs.add(err)
			}
			if len(acked) >= 600 {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := nodes[2].Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := nodes[2].Start(); err != nil {
		t.Fatal(err)
	}
	<-done
	for key := range acked {
		if v, err := c.Get(ctx, key).Int(); err != nil || v != 1 {
			t.Fatalf("%s = %d, %v; want 1 (an INCR applied once)", key, v, err)
		}
	}
	t.Logf("%d acknowledged INCRs; errors while the node was down: %v", len(acked), errs.kinds)
	// One writer: only the INCR in flight when the node stopped may fail,
	// and only as a documented kind.
	errs.check(t, 1)
	if len(acked) < 600 {
		t.Errorf("only %d INCRs acknowledged within 2 minutes", len(acked))
	}
}
