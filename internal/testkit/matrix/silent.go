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
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// Silent is one engine's part in RunSilent.
type Silent struct {
	// Start starts the engine's server inside h, with tls, ready for the
	// workload (its table or collection made).
	Start func(h *netns.Host, tls testenv.TLS) (SilentServer, error)
	// Open makes a client in mode to addr, a "host:port" whose host may be
	// a name that moves.
	Open func(mode sslconn.Mode, addr string) (Workload, error)
	// Long runs one healthy operation that keeps the server busy for d
	// (a sleep, a blocking pop) through w; nil where the server has none
	// (FerretDB): the frozen server then stands for the slow one.
	Long func(ctx context.Context, w Workload, d time.Duration) error
	// Modes are the client modes to run (at least one that encrypts and
	// DISABLED, where the engine has it).
	Modes []sslconn.Mode
	// IdleExtra is added to the idle pool's bound where the driver itself
	// reconnects in the background: mongo-driver's monitor may have begun
	// a connect to the old address, from a resolver not yet caught up,
	// just before the write, and that connect runs to its bound (3 s).
	IdleExtra time.Duration
	// KeepsMoved, when not empty, says why the adapter keeps its pooled
	// connections to an address its name no longer resolves to: the
	// moved-endpoint scenario is then skipped.
	KeepsMoved string
	// UnsentErrors is how many writes may fail with sslconn.ErrNotSent
	// (matched by errors.Is) when pooled connections are reset or retired
	// after the name moved, where the driver never retries a write whose
	// request was not sent (mongo-driver against a standalone server) and
	// may take such a connection before it hears of the close.
	UnsentErrors int
	// OpenBare makes a client of the bare driver configured by hand for
	// mode, for the comparison scripts/bench.sh runs (SSLCONN_BENCH_SILENT).
	OpenBare func(mode sslconn.Mode, addr string) (Workload, error)
}

// SilentServer is a server RunSilent runs in a test host.
type SilentServer interface {
	// Port is the port a client in mode uses.
	Port(mode sslconn.Mode) int
	// Freeze stops the server without closing anything (its kernel still
	// acknowledges) until Thaw; an error where it cannot.
	Freeze() error
	Thaw() error
	Stop() error
}

// ProcessServer is a SilentServer of a testenv server process; port
// picks the port a mode uses.
type ProcessServer struct {
	*testenv.Server
	PortFor func(s *testenv.Server, mode sslconn.Mode) int
}

// Port implements SilentServer.
func (p ProcessServer) Port(mode sslconn.Mode) int { return p.PortFor(p.Server, mode) }

// The promise RunSilent checks, per engine, with default options: when a
// primary goes silent (packets dropped, nothing answered, nothing reset)
// and its name moves to a new primary,
const (
	// silentBlock: no operation stays blocked longer than the library's
	// default dead-peer bound, which the kernel's timers keep whatever the
	// machine's load (the library arms them a tenth early).
	silentBlock = 10 * time.Second
	// frozenFor is how long frozen-primary stops the server: longer than
	// the bound, which must not cut it.
	frozenFor = 12 * time.Second
	// silentFailover: a write succeeds on the new primary within this of
	// the silence (the name may resolve to the old address for 5 s more).
	silentFailover = 15 * time.Second
	// silentErrors: application errors per worker, each an *sslconn.Error.
	silentErrors = 2
	// idleServe: an idle pool serves its next write within this once the
	// name resolves to the new primary.
	idleServe = 3 * time.Second
	// longOp: a healthy operation this long is never cut.
	longOp = 25 * time.Second
	// resolverLag is how long Go's resolver may keep an old /etc/hosts.
	resolverLag = 5500 * time.Millisecond
	// silentRun is how long the workload runs after the silence.
	silentRun = 20 * time.Second
	// silentOpTimeout bounds one operation of the test itself, so that a
	// library that does not detect the silence fails instead of hanging.
	silentOpTimeout = 60 * time.Second
)

var silentNames atomic.Int64

// RunSilent runs, per mode: a workload of four writers against a primary
// that goes silent while its name moves to a new primary; an idle pool
// whose connections all lead to the silent primary; a peer whose host
// resets every connection. Then, once: a name moved while its old server
// stays up; a healthy operation of 25 s; a primary frozen with SIGSTOP,
// whose kernel still acknowledges (the library cannot tell it from a slow
// server, and must not cut it); and, with SSLCONN_BENCH_SILENT set, the
// comparison with the bare driver.
func RunSilent(t *testing.T, c *testenv.Certs, spec Silent) {
	if testing.Short() {
		t.Skip("needs network namespaces and servers")
	}
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	tls := testenv.TLS{Cert: c.SAN, CA: c.CA}
	hosts := [2]*netns.Host{}
	servers := [2]SilentServer{}
	for i := range hosts {
		h, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
		t.Cleanup(func() {
			if err := h.Close(); err != nil {
				t.Error(err)
			}
		})
		s, err := spec.Start(h, tls)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		t.Cleanup(func() {
			h.Speak()
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	name := fmt.Sprintf("primary-%d-%d.sslconn.test", os.Getpid(), silentNames.Add(1))
	t.Cleanup(func() {
		if err := netns.RemoveName(name); err != nil {
			t.Error(err)
		}
	})
	var ids atomic.Int64
	for _, mode := range spec.Modes {
		t.Run(mode.String(), func(t *testing.T) {
			if servers[0].Port(mode) != servers[1].Port(mode) {
				t.Fatal("RunSilent needs both servers on the same ports")
			}
			addr := func() string { return fmt.Sprintf("%s:%d", name, servers[0].Port(mode)) }
			t.Run("silent-primary", func(t *testing.T) {
				runSilentPrimary(t, spec, mode, hosts, servers, name, addr(), &ids)
			})
			t.Run("idle-pool", func(t *testing.T) {
				runIdlePool(t, spec, mode, hosts, servers, name, addr(), &ids)
			})
			t.Run("peer-resets", func(t *testing.T) {
				runReset(t, spec, mode, hosts, servers, &ids)
			})
		})
	}
	t.Run("moved-endpoint", func(t *testing.T) {
		mode := spec.Modes[len(spec.Modes)-1]
		runMoved(t, spec, mode, hosts, servers, name, fmt.Sprintf("%s:%d", name, servers[0].Port(mode)), &ids)
	})
	// The last two address the first host directly: the name may still
	// lead to the second.
	t.Run("healthy-long-operation", func(t *testing.T) {
		if spec.Long == nil {
			t.Skip("the server has no long operation; frozen-primary stands for it")
		}
		mode := spec.Modes[len(spec.Modes)-1]
		w, err := spec.Open(mode, hosts[0].Addr(servers[0].Port(mode)))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*longOp)
		defer cancel()
		start := time.Now()
		if err := spec.Long(ctx, w, longOp); err != nil {
			t.Fatalf("a healthy %v operation failed after %v: %v", longOp, time.Since(start).Round(time.Millisecond), err)
		}
	})
	// A frozen server's kernel still acknowledges: to the library it is a
	// slow server, and is not cut. The driver's own read timeout (go-redis's
	// ReadTimeout) may still end the operation: it must then be typed.
	t.Run("frozen-primary", func(t *testing.T) {
		mode := spec.Modes[len(spec.Modes)-1]
		w, err := spec.Open(mode, hosts[0].Addr(servers[0].Port(mode)))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
		defer cancel()
		if err := w.Write(ctx, ids.Add(1)); err != nil {
			t.Fatal(err)
		}
		if err := servers[0].Freeze(); err != nil {
			t.Fatal(err)
		}
		thawed := time.AfterFunc(frozenFor, func() { servers[0].Thaw() })
		defer func() {
			if thawed.Stop() {
				servers[0].Thaw()
			}
		}()
		start := time.Now()
		err = w.Write(ctx, ids.Add(1))
		took := time.Since(start).Round(time.Millisecond)
		var se *sslconn.Error
		switch {
		case err == nil:
			t.Logf("a write to a server frozen for %v returned when it thawed, after %v", frozenFor, took)
		case errors.As(err, &se):
			t.Logf("a write to a server frozen for %v failed after %v: %v", frozenFor, took, err)
		default:
			t.Errorf("a write to a server frozen for %v failed after %v with an untyped error: %v", frozenFor, took, err)
		}
	})
	t.Run("versus-bare", func(t *testing.T) {
		runSilentBench(t, spec, hosts, servers, name, &ids)
	})
}

func setName(t *testing.T, name, ip string) {
	t.Helper()
	if err := netns.SetName(name, ip); err != nil {
		t.Fatal(err)
	}
}

// runSilentPrimary: four writers against hosts[0]; hosts[0] goes silent
// and the name moves to hosts[1] at the same moment.
func runSilentPrimary(t *testing.T, spec Silent, mode sslconn.Mode, hosts [2]*netns.Host,
	servers [2]SilentServer, name, addr string, ids *atomic.Int64) {
	setName(t, name, hosts[0].IP)
	time.Sleep(resolverLag) // the name may have pointed elsewhere before
	w, err := spec.Open(mode, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	type op struct {
		worker     int
		id         int64
		start, end time.Time
		err        error
	}
	var (
		mu      sync.Mutex
		ops     []op
		wg      sync.WaitGroup
		running = make(chan struct{})
	)
	stop := sync.OnceFunc(func() { close(running) })
	defer stop()
	for n := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-running:
					return
				default:
				}
				o := op{worker: n, id: ids.Add(1), start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
				o.err = w.Write(ctx, o.id)
				cancel()
				o.end = time.Now()
				mu.Lock()
				ops = append(ops, o)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	deadPeers := countDeadPeers(t)
	if err := hosts[0].Silence(); err != nil {
		t.Fatal(err)
	}
	silentAt := time.Now()
	setName(t, name, hosts[1].IP)
	time.Sleep(silentRun)
	stop()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(silentOpTimeout + 10*time.Second):
		t.Fatalf("the writers did not return within %v", silentOpTimeout+10*time.Second)
	}
	if err := hosts[0].Speak(); err != nil {
		t.Fatal(err)
	}
	if deadPeers() == 0 {
		t.Error("sslconn.dead_peers recorded no silent server")
	}

	counts := map[int64]int{}
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
		for id, k := range n {
			counts[id] += k
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].start.Before(ops[j].start) })
	var (
		firstB   time.Time
		longest  time.Duration
		errs     = map[int][]error{}
		acked    int
		failedIn int
	)
	for _, o := range ops {
		if d := o.end.Sub(o.start); d > longest {
			longest = d
		}
		if o.err == nil {
			acked++
			if o.start.After(silentAt) && (firstB.IsZero() || o.end.Before(firstB)) {
				firstB = o.end
			}
			if counts[o.id] != 1 {
				t.Errorf("acknowledged write %d is stored %d times", o.id, counts[o.id])
			}
			continue
		}
		failedIn++
		errs[o.worker] = append(errs[o.worker], o.err)
		if counts[o.id] > 1 {
			t.Errorf("failed write %d is stored %d times", o.id, counts[o.id])
		}
		var se *sslconn.Error
		if !errors.As(o.err, &se) {
			t.Errorf("write %d, started %v after the silence, failed with an untyped error: %v",
				o.id, o.start.Sub(silentAt).Round(time.Millisecond), o.err)
		}
	}
	for n, e := range errs {
		if len(e) > silentErrors {
			t.Errorf("worker %d had %d errors (at most %d): %v", n, len(e), silentErrors, errors.Join(e...))
		}
	}
	if longest > silentBlock {
		t.Errorf("an operation was blocked for %v (at most %v)", longest.Round(time.Millisecond), silentBlock)
	}
	switch {
	case firstB.IsZero():
		t.Errorf("no write succeeded on the new primary within %v of the silence", silentRun)
	case firstB.Sub(silentAt) > silentFailover:
		t.Errorf("the first write on the new primary succeeded %v after the silence (at most %v)",
			firstB.Sub(silentAt).Round(time.Millisecond), silentFailover)
	default:
		for _, o := range ops {
			if o.err != nil && o.start.After(firstB) {
				t.Errorf("write %d started %v after the first write on the new primary, and failed: %v",
					o.id, o.start.Sub(firstB).Round(time.Millisecond), o.err)
			}
		}
	}
	t.Logf("%d writes, %d acknowledged, %d failed; longest %v; first write on the new primary %v after the silence",
		len(ops), acked, failedIn, longest.Round(time.Millisecond), firstB.Sub(silentAt).Round(time.Millisecond))
}

// runIdlePool: a pool whose connections all lead to hosts[0] sits idle
// while hosts[0] goes silent and the name moves to hosts[1]; the next
// write, once the name resolves to hosts[1], is served at once.
func runIdlePool(t *testing.T, spec Silent, mode sslconn.Mode, hosts [2]*netns.Host,
	_ [2]SilentServer, name, addr string, ids *atomic.Int64) {
	setName(t, name, hosts[0].IP)
	time.Sleep(resolverLag)
	w, err := spec.Open(mode, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Fill the pool: concurrent writes each take a connection of their own.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
			defer cancel()
			if err := w.Write(ctx, ids.Add(1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := hosts[0].Silence(); err != nil {
		t.Fatal(err)
	}
	defer hosts[0].Speak()
	setName(t, name, hosts[1].IP)
	time.Sleep(resolverLag)
	ctx, cancel := context.WithTimeout(context.Background(), silentOpTimeout)
	defer cancel()
	start := time.Now()
	err = w.Write(ctx, ids.Add(1))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the idle pool's next write failed after %v: %v", took.Round(time.Millisecond), err)
	}
	if limit := idleServe + spec.IdleExtra; took > limit {
		t.Errorf("the idle pool's next write took %v (at most %v)", took.Round(time.Millisecond), limit)
	}
	t.Logf("the idle pool's next write took %v", took.Round(time.Millisecond))
}
