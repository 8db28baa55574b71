package matrix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/netns"
	"github.com/sslconn/sslconn/sslconn"
)

const (
	// resetBlock: after the server's host resets every connection, no
	// operation takes longer than this (a reconnect takes milliseconds;
	// the rest is room for a loaded machine).
	resetBlock = 5 * time.Second
	// resetRecover: every write started this long after the reset succeeds.
	resetRecover = 2 * time.Second
	// resetRun is how long the workload runs after the reset.
	resetRun = 6 * time.Second
	// movedBound: once a name moves while its old server stays up, no
	// write starts on the old server later than this after the move: the
	// resolver's lag, the library's re-resolution pace (5 s) and room for
	// a loaded machine.
	movedBound = resolverLag + 5*time.Second + 4*time.Second
	// movedRun is how long the workload runs after the move.
	movedRun = movedBound + 3*time.Second
	// benchBound bounds the bare driver's blocked operations in
	// the comparison: the kernel would hold them for about 15 minutes.
	benchBound = 30 * time.Second
)

// silentOp is one write of a workload.
type silentOp struct {
	worker     int
	id         int64
	start, end time.Time
	err        error
}

// writers is a workload of n goroutines writing through w, each write
// bounded by opTimeout, 10 ms apart.
type writers struct {
	mu      sync.Mutex
	ops     []silentOp
	wg      sync.WaitGroup
	running chan struct{}
	stop    func()
}

func startWriters(w Workload, n int, ids *atomic.Int64, opTimeout time.Duration) *writers {
	ws := &writers{running: make(chan struct{})}
	ws.stop = sync.OnceFunc(func() { close(ws.running) })
	for worker := range n {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for {
				select {
				case <-ws.running:
					return
				default:
				}
				o := silentOp{worker: worker, id: ids.Add(1), start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				o.err = w.Write(ctx, o.id)
				cancel()
				o.end = time.Now()
				ws.mu.Lock()
				ws.ops = append(ws.ops, o)
				ws.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	return ws
}

// halt stops the writers and waits for them up to within; it reports
// whether they all returned, and the writes so far, by start.
func (ws *writers) halt(within time.Duration) ([]silentOp, bool) {
	ws.stop()
	drained := make(chan struct{})
	go func() { ws.wg.Wait(); close(drained) }()
	ok := true
	select {
	case <-drained:
	case <-time.After(within):
		ok = false
	}
	ws.mu.Lock()
	ops := append([]silentOp(nil), ws.ops...)
	ws.mu.Unlock()
	sort.Slice(ops, func(i, j int) bool { return ops[i].start.Before(ops[j].start) })
	return ops, ok
}

// stored counts, per server, how many times each id is stored.
func stored(t *testing.T, spec Silent, hosts [2]*netns.Host, servers [2]SilentServer) [2]map[int64]int {
	t.Helper()
	var out [2]map[int64]int
	for i, s := range servers {
		c, err := spec.Open(sslconn.Required, hosts[i].Addr(s.Port(sslconn.Required)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
		n, err := c.Count(ctx)
		cancel()
		c.Close()
		if err != nil {
			t.Fatalf("count on server %d: %v", i, err)
		}
		out[i] = n
	}
	return out
}

// checkStored: every acknowledged write stored exactly once over both
// servers, every failed one at most once.
func checkStored(t *testing.T, ops []silentOp, counts [2]map[int64]int) {
	t.Helper()
	for _, o := range ops {
		n := counts[0][o.id] + counts[1][o.id]
		switch {
		case o.err == nil && n != 1:
			t.Errorf("acknowledged write %d is stored %d times", o.id, n)
		case o.err != nil && n > 1:
			t.Errorf("failed write %d is stored %d times", o.id, n)
		}
	}
}

// runReset: four writers against hosts[0]; the host's kernel resets every
// connection (ss -K) while the server stays up. Every operation ends
// quickly, each failure is typed (a request that went out is never
// re-sent), and the pool reconnects to the same server.
func runReset(t *testing.T, spec Silent, mode sslconn.Mode, hosts [2]*netns.Host,
	servers [2]SilentServer, ids *atomic.Int64) {
	w, err := spec.Open(mode, hosts[0].Addr(servers[0].Port(mode)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ws := startWriters(w, 4, ids, silentOpTimeout)
	defer ws.stop()
	// A long operation is surely in flight at the reset: it must end at
	// once, as an unknown outcome.
	type result struct {
		err error
		end time.Time
	}
	long := make(chan result, 1)
	if spec.Long != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
			defer cancel()
			// Longer than the run, and over soon after it: a server
			// that does not notice the reset (the TDS test server asleep
			// in WAITFOR) is free by the time it is stopped.
			err := spec.Long(ctx, w, resetRun+2*time.Second)
			long <- result{err, time.Now()}
		}()
	}
	time.Sleep(time.Second)
	resetAt := time.Now()
	if err := hosts[0].Reset(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(resetRun)
	if spec.Long != nil {
		select {
		case r := <-long:
			var se *sslconn.Error
			switch took := r.end.Sub(resetAt).Round(time.Millisecond); {
			case r.err == nil:
				t.Errorf("the long operation in flight at the reset succeeded %v after it", took)
			case !errors.As(r.err, &se) || !errors.Is(r.err, sslconn.ErrOutcomeUnknown):
				t.Errorf("the long operation in flight at the reset failed %v after it with %v, want sslconn.ErrOutcomeUnknown", took, r.err)
			case took > resetBlock:
				t.Errorf("the long operation in flight at the reset ended %v after it (at most %v)", took, resetBlock)
			default:
				t.Logf("the long operation in flight at the reset ended %v after it: %v", took, r.err)
			}
		case <-time.After(4 * resetRun):
			t.Errorf("the long operation in flight at the reset still runs %v after it", 4*resetRun+resetRun)
		}
	}
	ops, ok := ws.halt(silentOpTimeout + 10*time.Second)
	if !ok {
		t.Fatalf("the writers did not return within %v", silentOpTimeout+10*time.Second)
	}
	checkStored(t, ops, stored(t, spec, hosts, servers))
	var (
		longest   time.Duration
		failed    int
		recovered bool
		unknown   int
		notSent   int
		errs      = map[int]int{}
	)
	for _, o := range ops {
		longest = max(longest, o.end.Sub(o.start))
		late := o.start.After(resetAt.Add(resetRecover))
		if o.err == nil {
			recovered = recovered || late
			continue
		}
		failed++
		errs[o.worker]++
		var se *sslconn.Error
		switch {
		case !errors.As(o.err, &se) && errors.Is(o.err, sslconn.ErrNotSent) && notSent < spec.UnsentErrors:
			notSent++
		case !errors.As(o.err, &se):
			t.Errorf("write %d, started %v after the reset, failed with an untyped error: %v",
				o.id, o.start.Sub(resetAt).Round(time.Millisecond), o.err)
		case errors.Is(o.err, sslconn.ErrOutcomeUnknown):
			unknown++
		case errors.Is(o.err, sslconn.ErrNotSent):
			notSent++
		}
		if late {
			t.Errorf("write %d, started %v after the reset, failed: %v", o.id, o.start.Sub(resetAt).Round(time.Millisecond), o.err)
		}
	}
	for n, e := range errs {
		if e > silentErrors {
			t.Errorf("worker %d had %d errors (at most %d)", n, e, silentErrors)
		}
	}
	if longest > resetBlock {
		t.Errorf("an operation took %v (at most %v)", longest.Round(time.Millisecond), resetBlock)
	}
	if !recovered {
		t.Errorf("no write succeeded %v after the reset", resetRecover)
	}
	t.Logf("reset: %d writes, %d failed (%d ErrOutcomeUnknown, %d ErrNotSent); longest %v",
		len(ops), failed, unknown, notSent, longest.Round(time.Millisecond))
}

// runMoved: two writers through a name that leads to hosts[0]; the name
// moves to hosts[1] while hosts[0] stays up and healthy. The writers'
// pooled connections to hosts[0] are retired between operations, and
// every write goes to hosts[1] soon after; none fails.
func runMoved(t *testing.T, spec Silent, mode sslconn.Mode, hosts [2]*netns.Host,
	servers [2]SilentServer, name, addr string, ids *atomic.Int64) {
	if spec.KeepsMoved != "" {
		t.Skip(spec.KeepsMoved)
	}
	setName(t, name, hosts[0].IP)
	time.Sleep(resolverLag)
	w, err := spec.Open(mode, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Two writers: database/sql keeps two idle connections by default, so
	// none is closed and redialed on its own; the pool's connections must
	// be retired.
	ws := startWriters(w, 2, ids, silentOpTimeout)
	defer ws.stop()
	time.Sleep(time.Second)
	setName(t, name, hosts[1].IP)
	movedAt := time.Now()
	time.Sleep(movedRun)
	ops, ok := ws.halt(silentOpTimeout + 10*time.Second)
	if !ok {
		t.Fatalf("the writers did not return within %v", silentOpTimeout+10*time.Second)
	}
	counts := stored(t, spec, hosts, servers)
	checkStored(t, ops, counts)
	var (
		lastA, firstB time.Time
		failed        int
	)
	for _, o := range ops {
		if o.err != nil {
			failed++
			if failed > spec.UnsentErrors || !errors.Is(o.err, sslconn.ErrNotSent) {
				t.Errorf("write %d, started %v after the move, failed: %v", o.id, o.start.Sub(movedAt).Round(time.Millisecond), o.err)
			}
			continue
		}
		if counts[0][o.id] > 0 && o.start.After(lastA) {
			lastA = o.start
		}
		if counts[1][o.id] > 0 && (firstB.IsZero() || o.end.Before(firstB)) {
			firstB = o.end
		}
	}
	switch {
	case firstB.IsZero():
		t.Fatalf("no write reached the new address within %v of the move", movedRun)
	case lastA.Sub(movedAt) > movedBound:
		t.Errorf("a write started on the old address %v after the move (at most %v)", lastA.Sub(movedAt).Round(time.Millisecond), movedBound)
	}
	t.Logf("moved: %d writes, %d failed; first on the new address %v after the move, last on the old one started %v after",
		len(ops), failed, firstB.Sub(movedAt).Round(time.Millisecond), lastA.Sub(movedAt).Round(time.Millisecond))
}

// benchEnv turns on the comparison with the bare driver (scripts/bench.sh).
const benchEnv = "SSLCONN_BENCH_SILENT"

// runSilentBench compares the library with the bare driver, in the same
// run: four writers through a name that leads to hosts[0], which goes
// silent while the name moves to hosts[1]. It logs, per client, the time
// from the silence to the last blocked operation ending and to the first
// write on the new primary. The bare driver's operations would block for
// about 15 minutes: each is bounded by benchBound, which it then reports.
func runSilentBench(t *testing.T, spec Silent, hosts [2]*netns.Host, servers [2]SilentServer, name string, ids *atomic.Int64) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("set " + benchEnv + "=1 to compare with the bare driver (scripts/bench.sh)")
	}
	if spec.OpenBare == nil {
		t.Skip("no bare driver")
	}
	mode := spec.Modes[len(spec.Modes)-1]
	addr := fmt.Sprintf("%s:%d", name, servers[0].Port(mode))
	for _, impl := range []string{"sslconn", "bare"} {
		t.Run("impl="+impl, func(t *testing.T) {
			open := spec.Open
			if impl == "bare" {
				open = spec.OpenBare
			}
			setName(t, name, hosts[0].IP)
			time.Sleep(resolverLag)
			w, err := open(mode, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			ws := startWriters(w, 4, ids, benchBound)
			defer ws.stop()
			time.Sleep(time.Second)
			if err := hosts[0].Silence(); err != nil {
				t.Fatal(err)
			}
			defer hosts[0].Speak()
			silentAt := time.Now()
			setName(t, name, hosts[1].IP)
			time.Sleep(benchBound)
			ops, ok := ws.halt(2 * time.Second)
			if !ok {
				// Let what still waits on the silent server end.
				hosts[0].Speak()
				all, drained := ws.halt(silentOpTimeout)
				if !drained {
					t.Errorf("%s: writers still blocked %v after the silence ended", impl, silentOpTimeout)
				}
				ops = all
			}
			if err := hosts[0].Speak(); err != nil {
				t.Fatal(err)
			}
			counts := stored(t, spec, hosts, servers)
			var (
				lastEnd, firstB time.Time
				bounded         = !ok
				errs, twice     int
			)
			for _, o := range ops {
				if o.err != nil {
					errs++
				}
				if counts[0][o.id]+counts[1][o.id] > 1 {
					twice++
				}
				took := o.end.Sub(o.start)
				if took >= benchBound-time.Second || errors.Is(o.err, context.DeadlineExceeded) {
					bounded = true
				}
				// A blocked operation: one in flight at the silence or
				// started after, that failed or took over a second.
				if o.end.After(silentAt) && (o.err != nil || took > time.Second) && o.end.After(lastEnd) {
					lastEnd = o.end
				}
				if o.err == nil && o.start.After(silentAt) && (firstB.IsZero() || o.end.Before(firstB)) {
					firstB = o.end
				}
			}
			// ">30s": still blocked, or no write yet, at the benchmark's bound.
			bound := fmt.Sprintf(">%v", benchBound)
			since := func(at time.Time) string {
				if at.IsZero() || at.Sub(silentAt) >= benchBound-time.Second {
					return bound
				}
				return at.Sub(silentAt).Round(10 * time.Millisecond).String()
			}
			last := since(lastEnd)
			switch {
			case bounded:
				last = bound
			case lastEnd.IsZero():
				last = "none"
			}
			t.Logf("bench-silent impl=%s mode=%v last-blocked=%s first-new-primary=%s writes=%d errors=%d stored-twice=%d",
				impl, mode, last, since(firstB), len(ops), errs, twice)
		})
	}
}
