package redisssl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// sentinelSet is a TLS-only master, its replica and a Sentinel.
type sentinelSet struct{ master, replica, sentinel *testenv.Server }

var sentinels = testenv.NewLazy(func() (sentinelSet, error) {
	c, err := newCerts()
	if err != nil {
		return sentinelSet{}, err
	}
	m, r, s, err := testenv.StartRedisSentinel(testenv.Scenario(c, 1))
	return sentinelSet{m, r, s}, err
})

// startSentinel returns the Sentinel set-up, started on first use, with the
// node the Sentinel names as master first: a failover in an earlier run
// (-count) swapped the roles.
func startSentinel(t *testing.T) (master, replica, sentinel *testenv.Server) {
	t.Helper()
	certs, set := lazyCerts.Get(t), sentinels.Get(t)
	master, replica, sentinel = set.master, set.replica, set.sentinel
	out, err := testenv.RedisCLI(sentinel, testenv.Scenario(certs, 1), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", testenv.SentinelMaster)
	if err != nil {
		t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: %v %s", err, out)
	}
	if strings.Contains(out, strconv.Itoa(replica.TLSPort)) {
		master, replica = replica, master
	}
	return master, replica, sentinel
}

func failoverURL(sentinel *testenv.Server, params string) string {
	return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0?master_name=%s&password=%s&%s",
		testenv.RedisPassword, sentinel.TLSPort, testenv.SentinelMaster, testenv.RedisPassword, params)
}

// TestFailoverClient: Sentinel, master and replica all TLS-only; every
// mode that encrypts reaches the master through the Sentinel, verified
// by IP (the Sentinel announces 127.0.0.1), and a failover moves the
// client to the new master without losing a write a replica acknowledged.
func TestFailoverClient(t *testing.T) {
	certs := lazyCerts.Get(t)
	master, replica, sentinel := startSentinel(t)
	for _, mode := range []sslconn.Mode{sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity} {
		t.Run(mode.String(), func(t *testing.T) {
			c, err := NewFailoverClient(failoverURL(sentinel, "ssl-mode="+mode.String()+"&ssl-ca="+certs.JKS))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := c.Set(ctx, "mode", mode.String(), 0).Err(); err != nil {
				t.Fatal(err)
			}
			st, err := Verify(ctx, c)
			if err != nil || !st.Encrypted {
				t.Fatalf("%+v %v", st, err)
			}
		})
	}
	t.Run("foreign CA", func(t *testing.T) {
		c, err := NewFailoverClient(failoverURL(sentinel, "ssl-mode=VERIFY_CA&ssl-ca="+certs.OtherCA+"&max_retries=0"), sslconn.WithRetryBudget(-1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("want unknown authority, got %v", err)
		}
	})
	t.Run("failover", func(t *testing.T) { runFailover(t, master, replica, sentinel) })
}

func runFailover(t *testing.T, master, replica, sentinel *testenv.Server) {
	certs := lazyCerts.Get(t)
	c, err := NewFailoverClient(failoverURL(sentinel, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Del(ctx, "ids").Err(); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		acked    atomic.Int64 // SADDs acknowledged
		durable  []string     // ... and WAIT saw a replica take them
		errs     errorTally   // errors the application saw
		next     atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		firstErr error
	)
	const writers = 4
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := strconv.FormatInt(next.Add(1), 10)
				wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				var wait *redis.Cmd
				_, err := c.Pipelined(wctx, func(p redis.Pipeliner) error {
					p.SAdd(wctx, "ids", id)
					wait = p.Do(wctx, "WAIT", 1, 500)
					return nil
				})
				cancel()
				mu.Lock()
				switch {
				case err != nil:
					errs.add(err)
					if firstErr == nil {
						firstErr = err
					}
				case wait.Val() == int64(1):
					durable = append(durable, id)
					fallthrough
				default:
					acked.Add(1)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	if out, err := testenv.RedisCLI(sentinel, testenv.Scenario(certs, 1), "SENTINEL", "FAILOVER", testenv.SentinelMaster); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("SENTINEL FAILOVER: %v %s", err, out)
	}
	// Wait for the Sentinel to name the replica as master, then write on.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		out, _ := testenv.RedisCLI(sentinel, testenv.Scenario(certs, 1), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", testenv.SentinelMaster)
		if strings.Contains(out, strconv.Itoa(replica.TLSPort)) && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover after 30s: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	switched := acked.Load()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	got, err := c.SMembers(ctx, "ids").Result()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, id := range got {
		have[id] = true
	}
	var lost []string
	for _, id := range durable {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	role, _ := testenv.RedisCLI(replica, testenv.Scenario(certs, 1), "ROLE")
	t.Logf("%d writes acknowledged (%d after the switch), %d of them also by a replica; errors seen: %v (first: %v); the old replica is now %q",
		acked.Load(), acked.Load()-switched, len(durable), errs.kinds, firstErr, strings.Fields(role)[0])
	if len(lost) > 0 {
		t.Errorf("lost %d writes a replica had acknowledged: %v", len(lost), lost)
	}
	if acked.Load() <= switched {
		t.Errorf("no write succeeded after the failover")
	}
	// Only writes in flight at the switch may fail, and only as the
	// documented kinds: ErrOutcomeUnknown (sent on a connection the switch
	// closed) or ErrNotSent (its retries ran out), at most two per writer.
	// READONLY from the old master is retried, not reported.
	errs.check(t, 2*writers)
	_ = master
}

// errorTally counts the errors a workload saw by kind: the documented
// kinds a switch may cause, and the rest.
type errorTally struct {
	kinds map[string]int
	other []error
}

// add counts err; the caller serialises.
func (e *errorTally) add(err error) {
	if e.kinds == nil {
		e.kinds = map[string]int{}
	}
	switch {
	case errors.Is(err, sslconn.ErrOutcomeUnknown):
		e.kinds["ErrOutcomeUnknown"]++
	case errors.Is(err, sslconn.ErrNotSent):
		e.kinds["ErrNotSent"]++
	default:
		e.kinds["unclassified"]++
		e.other = append(e.other, err)
	}
}

// check fails t for an error of no documented kind, and for more than max
// of the documented ones.
func (e *errorTally) check(t *testing.T, max int) {
	t.Helper()
	for i, err := range e.other {
		if i == 3 {
			t.Errorf("... and %d more", len(e.other)-i)
			break
		}
		t.Errorf("an error of no documented kind reached the application: %v", err)
	}
	if n := e.kinds["ErrOutcomeUnknown"] + e.kinds["ErrNotSent"]; n > max {
		t.Errorf("%d writes failed (%v); at most %d may be in flight at the switch", n, e.kinds, max)
	}
}
