package redisssl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The fleet: fleetClients clients of fleetConns connections each, one
// worker per connection, in one process, through one server restart.
const (
	fleetClients = 50
	fleetConns   = 20
	fleetWorkers = fleetClients * fleetConns
	// fleetDown is how long the server stays down.
	fleetDown = 2 * time.Second
	// fleetPace is a worker's pause between two successful PINGs: the
	// fleet's steady load is fleetWorkers/fleetPace commands per second.
	fleetPace = 100 * time.Millisecond
	// fleetTimeout bounds each wait (the fleet up, the fleet back): a
	// loaded 2-core machine does 1,000 TLS handshakes in a few seconds.
	fleetTimeout = 2 * time.Minute
)

// dialLog records every TCP connection attempt the clients make: the SYNs
// the server's host sees (the accept checks included: they go through the
// same dialer).
type dialLog struct {
	mu       sync.Mutex
	attempts []time.Time
	accepted []time.Time
}

func (d *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	now := time.Now()
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	d.mu.Lock()
	d.attempts = append(d.attempts, now)
	if err == nil {
		d.accepted = append(d.accepted, time.Now())
	}
	d.mu.Unlock()
	return c, err
}

// count returns the attempts and accepted connections in [from, to).
func (d *dialLog) count(from, to time.Time) (attempts, accepted int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := func(ts []time.Time) (n int) {
		for _, t := range ts {
			if !t.Before(from) && t.Before(to) {
				n++
			}
		}
		return n
	}
	return in(d.attempts), in(d.accepted)
}

// peak returns the most attempts in any window of w within [from, to).
func (d *dialLog) peak(from, to time.Time, w time.Duration) int {
	d.mu.Lock()
	var ts []time.Time
	for _, t := range d.attempts {
		if !t.Before(from) && t.Before(to) {
			ts = append(ts, t)
		}
	}
	d.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestFleet: fleetWorkers connections across fleetClients redisssl
// clients (VERIFY_IDENTITY) through one restart of their Redis (down for
// fleetDown). It logs the time until every worker's PING succeeds again
// after the port accepts, the connection attempts per second during the
// outage and after, and the process's CPU per reconnect. A measurement,
// run by scripts/bench.sh: set SSLCONN_FLEET=1.
//
//	SSLCONN_FLEET=1 go test -run TestFleet -v ./redisssl
//
// impl=bare is go-redis by hand (TLS in its dialer, the same counting TCP
// dial), the application retrying a failed PING every 10 ms.
func TestFleet(t *testing.T) {
	if os.Getenv("SSLCONN_FLEET") == "" {
		t.Skip("a measurement: set SSLCONN_FLEET=1 (scripts/bench.sh does)")
	}
	for _, impl := range []string{"sslconn", "bare"} {
		t.Run("impl="+impl, func(t *testing.T) { fleet(t, impl == "bare") })
	}
}

func fleet(t *testing.T, bare bool) {
	certs := lazyCerts.Get(t)
	s, err := testenv.StartRedis(testenv.Scenario(certs, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	addr := net.JoinHostPort("localhost", strconv.Itoa(s.TLSPort))
	var log dialLog
	clients := make([]*redis.Client, fleetClients)
	// One WithDialer option for the whole fleet, so that the clients share
	// what they learn of the server, as those of the default dialer do.
	viaLog := sslconn.WithDialer(log.dial)
	for i := range clients {
		o := &redis.Options{Addr: addr, Password: testenv.RedisPassword, PoolSize: fleetConns,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
		var c *redis.Client
		if bare {
			tc := matrix.BareTLS(t, certs.CA, sslconn.VerifyIdentity, "localhost")
			o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
				raw, err := log.dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				c := tls.Client(raw, tc)
				if err := c.HandshakeContext(ctx); err != nil {
					raw.Close()
					return nil, err
				}
				return c, nil
			}
			c = redis.NewClient(o)
		} else {
			if c, err = NewClientFromOptions(o, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), viaLog); err != nil {
				t.Fatal(err)
			}
		}
		clients[i] = c
		defer c.Close()
	}

	// The workers: PING, pause, again; a failed PING is retried after
	// 10 ms, as an application would. ok[i] is worker i's last success.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	ok := make([]atomic.Int64, fleetWorkers)
	var appErrors atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{}
	for i := range fleetWorkers {
		c := clients[i/fleetConns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				octx, ocancel := context.WithTimeout(ctx, fleetTimeout)
				err := c.Ping(octx).Err()
				ocancel()
				pause := fleetPace
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					appErrors.Add(1)
					errMu.Lock()
					errKinds[errKind(err)]++
					errMu.Unlock()
					pause = 10 * time.Millisecond
				} else {
					ok[i].Store(time.Now().UnixNano())
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	// allSince waits until every worker has succeeded at or after since,
	// and returns when the last did; the first success of each is in
	// firsts.
	var firsts []time.Duration
	allSince := func(since time.Time) (time.Time, error) {
		deadline := time.Now().Add(fleetTimeout)
		first := make([]time.Time, fleetWorkers)
		for {
			last, n := since, 0
			for i := range ok {
				if v := time.Unix(0, ok[i].Load()); !v.Before(since) {
					if first[i].IsZero() {
						first[i] = v
					}
					n++
					if v.After(last) {
						last = v
					}
				}
			}
			if n == fleetWorkers {
				firsts = firsts[:0]
				for _, f := range first {
					firsts = append(firsts, f.Sub(since))
				}
				sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
				return last, nil
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%d of %d workers back after %v", n, fleetWorkers, fleetTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	begin := time.Now()
	up, err := allSince(begin)
	if err != nil {
		t.Fatal(err)
	}
	_, conns := log.count(begin, time.Now())
	t.Logf("fleet: %d clients x %d connections up in %v (%d connections)", fleetClients, fleetConns, up.Sub(begin).Round(time.Millisecond), conns)
	time.Sleep(time.Second) // steady state

	// The restart. A probe outside the fleet stamps when the port
	// accepts again.
	appErrors.Store(0)
	errMu.Lock()
	clear(errKinds)
	errMu.Unlock()
	cpu0 := matrix.CPUTime()
	stopAt := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	time.Sleep(fleetDown)
	accepting := make(chan time.Time, 1)
	go func() {
		for {
			c, err := net.DialTimeout("tcp", testenv.Addr(s.TLSPort), time.Second)
			if err == nil {
				c.Close()
				accepting <- time.Now()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	acceptAt := <-accepting
	back, err := allSince(acceptAt)
	if err != nil {
		t.Fatal(err)
	}
	cpu := matrix.CPUTime() - cpu0
	outAttempts, _ := log.count(stopped, acceptAt)
	stopAttempts, _ := log.count(stopAt, stopped)
	afterAttempts, reconnects := log.count(acceptAt, back)
	outage := acceptAt.Sub(stopped)
	recovery := back.Sub(acceptAt)
	info, _ := clients[0].Info(context.Background(), "stats", "cpu").Result()
	field := func(name string) string {
		for l := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
				return v
			}
		}
		return "?"
	}
	received := field("total_connections_received")
	maxClients, _ := clients[0].ConfigGet(context.Background(), "maxclients").Result()
	t.Logf("fleet: the server's maxclients: %v", maxClients["maxclients"])
	sys, _ := strconv.ParseFloat(field("used_cpu_sys"), 64)
	user, _ := strconv.ParseFloat(field("used_cpu_user"), 64)
	serverCPU := time.Duration((sys + user) * float64(time.Second))
	pct := func(p int) time.Duration { return firsts[(len(firsts)-1)*p/100].Round(time.Millisecond) }
	t.Logf("fleet: all %d back %v after the port accepts again (down %v); half back at %v, 90%% at %v, 99%% at %v",
		fleetWorkers, recovery.Round(time.Millisecond), outage.Round(time.Millisecond), pct(50), pct(90), pct(99))
	t.Logf("fleet: during the outage: %d attempts in %v, %.0f/s (peak %d in 100 ms); while stopping: %d", outAttempts, outage.Round(time.Millisecond),
		float64(outAttempts)/outage.Seconds(), log.peak(stopped, acceptAt, 100*time.Millisecond), stopAttempts)
	t.Logf("fleet: after accepting: %d attempts, %d connections in %v, %.0f/s (peak %d in 100 ms); the server counted %s connections since its start",
		afterAttempts, reconnects, recovery.Round(time.Millisecond), float64(afterAttempts)/max(recovery.Seconds(), 1e-3), log.peak(acceptAt, back, 100*time.Millisecond), received)
	t.Logf("fleet: CPU %v from the stop to all back, %v per reconnect (the server: %v since its start, %v per connection); %d application errors", cpu.Round(time.Millisecond),
		(cpu / time.Duration(max(reconnects, 1))).Round(time.Microsecond), serverCPU.Round(time.Millisecond), (serverCPU / time.Duration(max(reconnects, 1))).Round(time.Microsecond), appErrors.Load())
	errMu.Lock()
	t.Logf("fleet: application errors by kind: %v", errKinds)
	errMu.Unlock()
}

// errKind names an error briefly, for the tally: its sslconn kind, or its
// text without addresses.
func errKind(err error) string {
	var e *sslconn.Error
	if errors.As(err, &e) {
		return e.Kind.Error() + " (" + e.Detail + ")"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
