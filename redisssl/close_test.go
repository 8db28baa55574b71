package redisssl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// downOptions retry a port that refuses for a minute, every 20 to 50 ms:
// a dial that goes on retrying shows within a second.
func downOptions(c *matrix.DialCounter) []sslconn.Option {
	return []sslconn.Option{
		sslconn.WithDialer(c.Dial),
		sslconn.WithRetryBudget(time.Minute),
		sslconn.WithBackoff(sslconn.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}),
	}
}

// assertQuiet fails if the counter moves within a second, after a grace of
// 200 ms for an attempt that had already started.
func assertQuiet(t *testing.T, c *matrix.DialCounter, after string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	n0 := c.N()
	time.Sleep(time.Second)
	if n := c.N(); n != n0 {
		t.Errorf("%d new connection attempt(s) in the second after %s", n-n0, after)
	}
}

// ourMarkers name, in goroutine stacks, the dialing of this module and of
// go-redis's pools: the dialer and its watch, the engine's retry loop and
// its check whether a refusing port accepts again, and go-redis's dial
// goroutine and probe loop.
var ourMarkers = []string{"redisssl.(*dialer).dial", "redisssl.(*owner).watchLoop", "internal/core.(*Config).",
	"pool.(*ConnPool).queuedNewConn", "pool.(*ConnPool).tryDial"}

// ours returns the stacks of the goroutines that run ourMarkers.
func ours() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, m := range ourMarkers {
			if strings.Contains(g, m) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// assertNoLeak fails unless, within 5 s (go-redis's own probe loop, and
// the engine's check whether a refusing port accepts again, sleep up to
// 1 s), no goroutine dials any more and, unless goRedisKeeps, the number
// of goroutines is back to base. goRedisKeeps: go-redis's failover cluster
// client never closes its Sentinel client (its Close does not reach it),
// whose goroutines stay.
func assertNoLeak(t *testing.T, base int, goRedisKeeps bool) {
	t.Helper()
	if matrix.WaitFor(5*time.Second, func() bool {
		return len(ours()) == 0 && (goRedisKeeps || runtime.NumGoroutine() <= base)
	}) {
		return
	}
	t.Errorf("after 5 s: %d goroutines, %d before the client; dialing still:\n%s",
		runtime.NumGoroutine(), base, strings.Join(ours(), "\n\n"))
}

// TestCloseStopsDials: a client closed while a command waits for a
// connection to a server that is down stops dialing at once: no new
// connection attempt after Close, the waiting command returns, and no
// goroutine is left behind. For every kind of client the constructors
// make.
func TestCloseStopsDials(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	clients := []struct {
		name string
		open func(addr string, opts []sslconn.Option) (redis.UniversalClient, error)
	}{
		{"Client", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewClient("redis://"+addr+"/0", opts...))
		}},
		{"ClientFromOptions", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewClientFromOptions(&redis.Options{Addr: addr, MinIdleConns: 2}, opts...))
		}},
		{"ClusterClient", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewClusterClient("redis://"+addr, opts...))
		}},
		{"ClusterClientFromOptions", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewClusterClientFromOptions(&redis.ClusterOptions{Addrs: []string{addr}}, opts...))
		}},
		// Behind Sentinel: a Sentinel that is up names the master that
		// is down.
		{"FailoverClient", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewFailoverClient("redis://"+addr+"?master_name=mymaster&ssl-mode=DISABLED", opts...))
		}},
		{"FailoverClientFromOptions", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return universal(NewFailoverClientFromOptions(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{addr}},
				append(opts, sslconn.WithMode(sslconn.Disabled))...))
		}},
		{"FailoverClusterClient", func(addr string, opts []sslconn.Option) (redis.UniversalClient, error) {
			return NewUniversalClientFromOptions(&redis.UniversalOptions{Addrs: []string{addr}, MasterName: "mymaster", RouteRandomly: true},
				append(opts, sslconn.WithMode(sslconn.Disabled))...)
		}},
	}
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			addr := matrix.ClosedAddr(t)
			if strings.HasPrefix(tc.name, "Failover") {
				addr = startFakeSentinel(t, addr)
			}
			var dials matrix.DialCounter
			base := runtime.NumGoroutine()
			c, err := tc.open(addr, downOptions(&dials))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Ping(context.Background()).Err() }()
			if !matrix.WaitFor(10*time.Second, func() bool { return dials.N() >= 5 }) {
				t.Fatalf("%d connection attempts in 10 s, want 5", dials.N())
			}
			select {
			case err := <-done:
				t.Fatalf("the command returned before Close, while the dialer should retry: %v", err)
			default:
			}
			closed := time.Now()
			if err := c.Close(); err != nil {
				t.Logf("Close: %v", err)
			}
			select {
			case err := <-done:
				t.Logf("the command returned %v after Close: %v", time.Since(closed).Round(time.Millisecond), err)
				if err == nil {
					t.Fatal("the command succeeded against a closed port")
				}
				if !errors.Is(err, redis.ErrClosed) {
					t.Errorf("%v, want redis.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the command still waits 5 s after Close")
			}
			assertQuiet(t, &dials, "Close")
			assertNoLeak(t, base, tc.name == "FailoverClusterClient")
		})
	}
}

// TestDeadlineBoundsDial: a command with a 1 s deadline against a server
// that is down ends in ErrUnavailable at about its deadline, and the dial
// it started makes no new attempt once no command waits for it, though
// the client stays open.
func TestDeadlineBoundsDial(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	addr := matrix.ClosedAddr(t)
	var dials matrix.DialCounter
	c, err := NewClient("redis://"+addr+"/0", downOptions(&dials)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := runtime.NumGoroutine() // with the open client's own
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = c.Ping(ctx).Err()
	took := time.Since(start)
	t.Logf("after %v (%d connection attempts): %v", took.Round(time.Millisecond), dials.N(), err)
	if !errors.Is(err, sslconn.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v, want ErrUnavailable matching the deadline", err)
	}
	if took > 5*time.Second {
		t.Errorf("returned after %v for a 1 s deadline", took)
	}
	assertQuiet(t, &dials, "the command's deadline")
	// No dial, watch or probe goes on for the open client either.
	assertNoLeak(t, base, false)
}

// startFakeSentinel starts a plaintext Sentinel that names master as the
// master of every name, and returns its address. Its connections end with
// their clients.
func startFakeSentinel(t *testing.T, master string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				for {
					args, err := readCommand(rd)
					if err != nil {
						return
					}
					var reply string
					switch cmd := strings.ToUpper(args[0]); {
					case cmd == "HELLO":
						reply = "%3\r\n" + bulk("server") + bulk("redis") + bulk("proto") + ":3\r\n" + bulk("mode") + bulk("sentinel")
					case cmd == "SENTINEL" && len(args) > 1 && strings.EqualFold(args[1], "get-master-addr-by-name"):
						reply = "*2\r\n" + bulk(host) + bulk(port)
					case cmd == "SENTINEL":
						reply = "*0\r\n"
					case cmd == "SUBSCRIBE" && len(args) > 1:
						reply = ">3\r\n" + bulk("subscribe") + bulk(args[1]) + ":1\r\n"
					case cmd == "PING":
						reply = "+PONG\r\n"
					case cmd == "CLIENT":
						reply = "+OK\r\n"
					default:
						reply = "-ERR unknown command '" + args[0] + "'\r\n"
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUnwaitedDialOnce: a connection no command waits for (here
// MinIdleConns, dialled when the client is built) gets one attempt: no
// retry, one TCP connection (DISABLED: one per attempt).
func TestUnwaitedDialOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	addr := matrix.ClosedAddr(t)
	var dials matrix.DialCounter
	var retries atomic.Int64
	c, err := NewClientFromOptions(&redis.Options{Addr: addr, MinIdleConns: 1},
		append(downOptions(&dials), sslconn.WithMode(sslconn.Disabled),
			sslconn.WithRetryCallback(func(sslconn.RetryEvent) { retries.Add(1) }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(1500 * time.Millisecond)
	// go-redis itself may start a second refill of MinIdleConns (its pool
	// checks again when a connection is taken or removed; seen once under
	// load): that is its dial, not a retry of ours, which would be counted.
	if n, r := dials.N(), retries.Load(); n < 1 || n > 2 || r != 0 {
		t.Errorf("%d connection attempts and %d retries in 1.5 s, want 1 (2 at most, go-redis's own) and 0", n, r)
	}
}
