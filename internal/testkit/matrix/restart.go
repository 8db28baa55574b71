package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// Workload is what a restart test drives against one engine. Write stores
// its id on the server (duplicates must be visible in Count); Count reads
// back how often each id is there.
type Workload interface {
	Write(ctx context.Context, id int64) error
	Read(ctx context.Context) error
	Count(ctx context.Context) (map[int64]int, error)
	// Status reports the TLS state of a live connection (the adapter's Verify).
	Status(ctx context.Context) (sslconn.Status, error)
	Close() error
}

// Transition is one SSL-triggered restart: the server goes down, the set-up
// changes (and perhaps the CA file the client reads), and it comes back.
type Transition struct {
	Name      string
	Mode      sslconn.Mode  // the client's mode
	To        testenv.TLS   // the server's set-up after the restart
	CA        string        // the CA file to put in place while the server is down ("" keeps it)
	Down      time.Duration // how long the server stays down
	Encrypted bool          // what Verify must say afterwards
}

// Transitions are the restarts the consoles cause, in an order one server
// can go through: enable SSL, update the certificate (same CA), rotate the
// CA (the client's CA file is replaced while the server is down), a down
// time longer than a dial timeout, and disable SSL. onPlainPort serves TLS
// on the plaintext port for engines that keep them apart.
func Transitions(c *testenv.Certs, onPlainPort bool) []Transition {
	on := func(p testenv.Pair) testenv.TLS {
		return testenv.TLS{Cert: p, CA: c.CA, OnPlainPort: onPlainPort}
	}
	return []Transition{
		{Name: "enable-SSL", Mode: sslconn.Preferred, To: on(c.SAN), Down: time.Second, Encrypted: true},
		{Name: "update-certificate", Mode: sslconn.VerifyIdentity, To: on(c.CNOnly), Down: time.Second, Encrypted: true},
		{Name: "rotate-CA", Mode: sslconn.VerifyIdentity, To: on(c.MITM), CA: c.OtherCA, Down: time.Second, Encrypted: true},
		{Name: "long-down-time", Mode: sslconn.VerifyIdentity, To: on(c.MITM), Down: 12 * time.Second, Encrypted: true},
		{Name: "disable-SSL", Mode: sslconn.Preferred, To: testenv.TLS{Off: true}, Down: time.Second, Encrypted: false},
	}
}

// Time limits of RunRestarts. Each step has its own. A single 3-minute
// context used to bound the whole transition: the workload's operations,
// each of which the client may retry for its own 3-minute budget
// (sslconn.DefaultRetryBudget), the wait for them to finish, and then
// Count and Status. One operation left retrying after the restart spent
// the whole of it, wg.Wait waited for that, and Count then failed at once
// with "context deadline exceeded", far from the cause; and the serial
// waits alone (stop 20 s, down time, start-up 60 s, recovery 60 s) left
// a slow machine little of it. The usual durations below are for a loaded
// 2-core machine; each limit leaves room for one twice as slow, and ends a
// hang with a message naming the step.
const (
	// opTimeout bounds one workload operation. One that starts as the
	// server stops rides out the stop, the down time (at most 12 s), the
	// start and the client's backoff: 15-30 s.
	opTimeout = 2 * time.Minute
	// stopTimeout and startTimeout bound the stop and start callbacks
	// (testenv's own limits: 30 s to stop, 120 s to be ready; usually
	// under a second and a few seconds).
	stopTimeout  = time.Minute
	startTimeout = 3 * time.Minute
	// recoverOps operations must succeed within recoverTimeout of the
	// server being back. The README states a few to a few tens of
	// milliseconds to the first success after a short outage, a few
	// hundred after the 12 s one (the accept checks thin out to one per
	// 300 ms by then); 2 s leaves room for a machine twice as slow and
	// still fails a library that sleeps out its backoff.
	recoverOps     = 20
	recoverTimeout = 2 * time.Second
	// drainTimeout bounds the workers finishing their current operation
	// once told to stop, with the server back and the client recovered
	// (usually milliseconds, at most a backoff delay and a handshake). An
	// operation still running then is stuck: it is cancelled and the test
	// fails, rather than waiting out opTimeout.
	drainTimeout = 30 * time.Second
	// abortTimeout bounds the wait for the workers after that cancellation.
	abortTimeout = 15 * time.Second
	// checkTimeout bounds each check after the workload, Count and Status,
	// each with a context of its own.
	checkTimeout = time.Minute
)

// inFlightGrace bounds how long after its connection was cut (the
// forwarder's cut, or the server's stop) an operation in flight on it may
// end and still be excused: a request waiting for its answer learns of the
// closed connection at once (milliseconds; 2 s leaves room for a machine
// twice as slow under the race detector). One that fails later did
// something else first (retried, waited for the server), and its failure
// is the library's, not the cut's.
const inFlightGrace = 2 * time.Second

// OutcomeUnknownReporter is implemented by a Workload whose driver has a
// documented error of its own for "the connection was lost after the
// request was sent" that the adapter does not (yet) turn into
// sslconn.ErrOutcomeUnknown. Such errors are excused like ErrOutcomeUnknown.
type OutcomeUnknownReporter interface {
	OutcomeUnknown(err error) bool
}

// LostAfterSent reports whether err is a driver's bare report that the
// connection broke while it waited for the answer to a request it had
// written: an end of stream, or a read that failed (reset, closed). For
// OutcomeUnknownReporter implementations of drivers that report an unknown
// outcome that way; a dial's or a write's error is not among them.
func LostAfterSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		// go-mssqldb wraps a bare end of stream as an OpError of its own,
		// Op "Read" (token.go); the net package's is "read".
		return strings.EqualFold(op.Op, "read")
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// outcomeUnknown reports whether err says the operation's outcome is
// unknown: sslconn.ErrOutcomeUnknown, or the driver's documented
// equivalent (OutcomeUnknownReporter).
func outcomeUnknown(w Workload, err error) bool {
	if errors.Is(err, sslconn.ErrOutcomeUnknown) {
		return true
	}
	r, ok := w.(OutcomeUnknownReporter) // false for a nil w
	return ok && r.OutcomeUnknown(err)
}

// excuse returns "" and the cut when o's failure is one the contract
// documents for a connection cut under it: typed as an unknown outcome,
// in flight while one of cuts closed connections, and ended within
// inFlightGrace of that cut's end. Otherwise it says why not.
func excuse(w Workload, o op, cuts []testenv.Cut) (string, testenv.Cut) {
	if !outcomeUnknown(w, o.err) {
		return "not an operation in flight whose outcome is unknown (want sslconn.ErrOutcomeUnknown)", testenv.Cut{}
	}
	var spanned []testenv.Cut
	for _, c := range cuts {
		if c.Spans(o.start, o.end) {
			spanned = append(spanned, c)
		}
	}
	if len(spanned) == 0 {
		return "ErrOutcomeUnknown, but not in flight while a connection was cut", testenv.Cut{}
	}
	for _, c := range spanned {
		if !o.end.After(c.End.Add(inFlightGrace)) {
			return "", c
		}
	}
	return fmt.Sprintf("ErrOutcomeUnknown, but ended %v after the cut it was in flight at (more than %v)",
		o.end.Sub(spanned[len(spanned)-1].End).Round(time.Millisecond), inFlightGrace), testenv.Cut{}
}

// Excuse is excuse for tests that keep their own record of operations:
// "" when err, of an operation that ran from start to end, is typed
// sslconn.ErrOutcomeUnknown, was in flight at one of cuts and ended within
// inFlightGrace of it; otherwise why not.
func Excuse(err error, start, end time.Time, cuts []testenv.Cut) string {
	why, _ := excuse(nil, op{start: start, end: end, err: err}, cuts)
	return why
}

type op struct {
	start, end time.Time
	write      bool
	id         int64
	err        error
	aborted    bool // cancelled by RunRestarts because the workers were stuck
}

func (o op) String() string {
	if o.write {
		return fmt.Sprintf("write %d", o.id)
	}
	return "read"
}

// within runs f and fails the test if it does not return within limit.
func within(t *testing.T, what string, limit time.Duration, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-errc:
		return err
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, limit)
		return nil
	}
}

// RunRestarts runs Transitions(c, onPlainPort) in turn against one server: a workload
// of concurrent reads and writes (each write with a unique id) runs while
// restart takes the server down, changes its set-up, and brings it back.
// open makes the client for a transition's mode, reading the CA from a
// file that starts as the test CA and is replaced when the CA rotates. It
// then checks, from the server's data, that every acknowledged
// write is there exactly once and every write with an unknown outcome at
// most once; that reads and writes resumed without help, within
// recoverTimeout, and writes were acknowledged before and after the
// restart; that the only errors were operations in flight when the server
// stopped, typed as an unknown outcome and ended soon after (see excuse);
// and that the connection is encrypted as the transition says. It logs the
// recovery time: from start returning (the server accepting connections
// again, give or take the harness's readiness check) to the first
// operation that succeeded after it.
func RunRestarts(t *testing.T, c *testenv.Certs, onPlainPort bool,
	open func(mode sslconn.Mode, caFile string) (Workload, error),
	stop func() error, start func(testenv.TLS) error) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := copyFile(c.CA, caFile); err != nil {
		t.Fatal(err)
	}
	var nextID atomic.Int64
	for _, tr := range Transitions(c, onPlainPort) {
		t.Run(tr.Name, func(t *testing.T) {
			w, err := open(tr.Mode, caFile)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// Every workload operation has its own deadline, under workCtx,
			// which is cancelled only if the workers are stuck, or when the
			// subtest ends.
			workCtx, abort := context.WithCancel(context.Background())
			defer abort()
			do := func(f func(context.Context) error) error {
				ctx, cancel := context.WithTimeout(workCtx, opTimeout)
				defer cancel()
				return f(ctx)
			}
			if err := do(func(ctx context.Context) error { return w.Write(ctx, nextID.Add(1)) }); err != nil {
				t.Fatalf("before the restart: %v", err)
			}

			var (
				mu       sync.Mutex
				ops      []op
				inFlight = map[int]op{} // each worker's current operation
				running  = make(chan struct{})
				wg       sync.WaitGroup
				upAt     atomic.Int64 // unix nanos when the server was back
				afterOK  atomic.Int32 // successful operations after the restart
				writesOK atomic.Int32 // of which writes
			)
			stopWorkers := sync.OnceFunc(func() { close(running) })
			defer stopWorkers() // also when a step fails the test
			worker := func(n int, write bool) {
				defer wg.Done()
				for {
					select {
					case <-running:
						return
					default:
					}
					o := op{start: time.Now(), write: write}
					if write {
						o.id = nextID.Add(1)
					}
					mu.Lock()
					inFlight[n] = o
					mu.Unlock()
					if write {
						o.err = do(func(ctx context.Context) error { return w.Write(ctx, o.id) })
					} else {
						o.err = do(w.Read)
					}
					o.end = time.Now()
					o.aborted = o.err != nil && workCtx.Err() != nil
					if o.err == nil && upAt.Load() != 0 && o.start.UnixNano() > upAt.Load() {
						afterOK.Add(1)
						if write {
							writesOK.Add(1)
						}
					}
					mu.Lock()
					delete(inFlight, n)
					ops = append(ops, o)
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}
			for n, write := range []bool{true, true, false, false} {
				wg.Add(1)
				go worker(n, write)
			}
			time.Sleep(300 * time.Millisecond)
			stopBegin := time.Now()
			if err := within(t, "stopping the server", stopTimeout, stop); err != nil {
				t.Fatal(err)
			}
			stoppedAt := time.Now()
			// The CA file is replaced halfway through the down time, not
			// the instant the stop returns: a handshake with the old
			// server that was under way at the stop (its certificate
			// checked a moment later) would otherwise meet the new CA, a
			// race no real rotation runs.
			time.Sleep(tr.Down / 2)
			if tr.CA != "" {
				if err := copyFile(tr.CA, caFile); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(tr.Down - tr.Down/2)
			startBegin := time.Now()
			if err := within(t, "starting the server", startTimeout, func() error { return start(tr.To) }); err != nil {
				t.Fatal(err)
			}
			up := time.Now()
			upAt.Store(up.UnixNano())
			deadline := up.Add(recoverTimeout)
			for (afterOK.Load() < recoverOps || writesOK.Load() == 0) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n, nw := afterOK.Load(), writesOK.Load(); n < recoverOps || nw == 0 {
				t.Errorf("only %d operations (%d writes) succeeded within %v of the restart, want %d (and a write)", n, nw, recoverTimeout, recoverOps)
			}

			// Stop the workload, and wait for the operations in flight,
			// bounded: one still running long after the client recovered
			// is stuck, and is cancelled.
			stopWorkers()
			drained := make(chan struct{})
			go func() { wg.Wait(); close(drained) }()
			select {
			case <-drained:
			case <-time.After(drainTimeout):
				mu.Lock()
				var stuck []string
				for _, o := range inFlight {
					stuck = append(stuck, fmt.Sprintf("%s started %v after the server was back",
						o, o.start.Sub(up).Round(time.Millisecond)))
				}
				mu.Unlock()
				sort.Strings(stuck)
				t.Errorf("operations still running %v after the workload was told to stop (the server back for %v), cancelled: %s",
					drainTimeout, time.Since(up).Round(time.Millisecond), strings.Join(stuck, "; "))
				abort()
				select {
				case <-drained:
				case <-time.After(abortTimeout):
					t.Fatalf("the workload's operations ignored their cancelled context for %v", abortTimeout)
				}
			}

			var first time.Time
			acked, unknown := map[int64]bool{}, map[int64]bool{}
			// The stop closes the server's end of every connection, at most
			// one per worker in flight: the window an operation must have
			// been in flight in to be excused.
			stopCut := []testenv.Cut{{Moved: stopBegin, Begin: stopBegin, End: stoppedAt, Closed: 4}}
			var excused []string
			ackedBefore := 0
			for _, o := range ops {
				switch {
				case o.err == nil && o.write:
					acked[o.id] = true
					if o.end.Before(stopBegin) {
						ackedBefore++
					}
				case o.write:
					unknown[o.id] = true
				}
				if o.err != nil && !o.aborted {
					if why, _ := excuse(w, o, stopCut); why != "" {
						t.Errorf("%s started at %v from the stop's beginning (the stop took %v), failed after %v: %s: %v",
							o, o.start.Sub(stopBegin).Round(time.Millisecond), stoppedAt.Sub(stopBegin).Round(time.Millisecond),
							o.end.Sub(o.start).Round(time.Millisecond), why, o.err)
					} else {
						excused = append(excused, fmt.Sprintf("%s: %v", o, o.err))
					}
				}
				if o.err == nil && o.start.After(up) && (first.IsZero() || o.end.Before(first)) {
					first = o.end
				}
			}
			if ackedBefore == 0 {
				t.Errorf("no write was acknowledged before the server stopped")
			}
			if first.IsZero() {
				t.Errorf("no operation that started after the restart succeeded")
			} else if first.Sub(up) > recoverTimeout {
				t.Errorf("the first operation after the restart succeeded %v after it, want within %v", first.Sub(up).Round(time.Millisecond), recoverTimeout)
			}
			if len(excused) > 0 {
				t.Logf("in flight at the stop: %s", strings.Join(excused, "; "))
			}
			// The checks run with the workload stopped, each with its own
			// deadline, so no slow step before them can leave them none.
			check := func(f func(context.Context) error) error {
				ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
				defer cancel()
				return f(ctx)
			}
			var counts map[int64]int
			err = check(func(ctx context.Context) (err error) {
				counts, err = w.Count(ctx)
				return err
			})
			if err != nil {
				t.Fatalf("count, %v after the server was back: %v", time.Since(up).Round(time.Millisecond), err)
			}
			for id := range acked {
				if counts[id] != 1 {
					t.Errorf("acknowledged write %d is there %d times", id, counts[id])
				}
			}
			var lost []int64
			for id := range unknown {
				if counts[id] > 1 {
					t.Errorf("write %d with an unknown outcome is there %d times", id, counts[id])
				}
				if counts[id] == 0 {
					lost = append(lost, id)
				}
			}
			sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
			var st sslconn.Status
			err = check(func(ctx context.Context) (err error) {
				st, err = w.Status(ctx)
				return err
			})
			if err != nil || st.Encrypted != tr.Encrypted {
				t.Errorf("after the restart: %+v %v, want encrypted=%t", st, err, tr.Encrypted)
			}
			t.Logf("%d ops, %d writes acknowledged, %d with unknown outcome (%d not applied); stop took %v; start %v; recovery %v",
				len(ops), len(acked), len(unknown), len(lost), stoppedAt.Sub(stopBegin).Round(time.Millisecond),
				up.Sub(startBegin).Round(time.Millisecond), first.Sub(up).Round(time.Millisecond))
		})
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
