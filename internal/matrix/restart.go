package matrix

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testenv"
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

type op struct {
	start, end time.Time
	write      bool
	id         int64
	err        error
}

// RunRestarts runs Transitions(c, onPlainPort) in turn against one server: a workload
// of concurrent reads and writes (each write with a unique id) runs while
// restart takes the server down, changes its set-up, and brings it back.
// open makes the client for a transition's mode, reading the CA from a
// file that starts as the test CA and is replaced when the CA rotates. It
// then checks, from the server's data, that every acknowledged
// write is there exactly once and every write with an unknown outcome at
// most once; that reads and writes resumed without help; that the only
// errors were operations in flight when the server stopped; and that the
// connection is encrypted as the transition says. It logs the recovery
// time: from the server accepting connections again to the first
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
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := w.Write(ctx, nextID.Add(1)); err != nil {
				t.Fatalf("before the restart: %v", err)
			}

			var (
				mu      sync.Mutex
				ops     []op
				running = make(chan struct{})
				wg      sync.WaitGroup
				upAt    atomic.Int64 // unix nanos when the server was back
				afterOK atomic.Int32 // successful operations after the restart
			)
			worker := func(write bool) {
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
						o.err = w.Write(ctx, o.id)
					} else {
						o.err = w.Read(ctx)
					}
					o.end = time.Now()
					if o.err == nil && upAt.Load() != 0 && o.start.UnixNano() > upAt.Load() {
						afterOK.Add(1)
					}
					mu.Lock()
					ops = append(ops, o)
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}
			for _, write := range []bool{true, true, false, false} {
				wg.Add(1)
				go worker(write)
			}
			time.Sleep(300 * time.Millisecond)
			stopBegin := time.Now()
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			stoppedAt := time.Now()
			if tr.CA != "" {
				if err := copyFile(tr.CA, caFile); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(tr.Down)
			if err := start(tr.To); err != nil {
				t.Fatal(err)
			}
			up := time.Now()
			upAt.Store(up.UnixNano())
			deadline := time.Now().Add(time.Minute)
			for afterOK.Load() < 20 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			close(running)
			wg.Wait()

			if afterOK.Load() < 20 {
				t.Errorf("only %d operations succeeded within a minute of the restart", afterOK.Load())
			}
			var first time.Time
			acked, unknown := map[int64]bool{}, map[int64]bool{}
			for _, o := range ops {
				switch {
				case o.err == nil && o.write:
					acked[o.id] = true
				case o.write:
					unknown[o.id] = true
				}
				if o.err != nil && !o.start.Before(stoppedAt) {
					t.Errorf("an operation that started %v after the server stopped failed: %v", o.start.Sub(stoppedAt), o.err)
				}
				if o.err == nil && o.start.After(up) && (first.IsZero() || o.end.Before(first)) {
					first = o.end
				}
			}
			counts, err := w.Count(ctx)
			if err != nil {
				t.Fatalf("count: %v", err)
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
			st, err := w.Status(ctx)
			if err != nil || st.Encrypted != tr.Encrypted {
				t.Errorf("after the restart: %+v %v, want encrypted=%t", st, err, tr.Encrypted)
			}
			t.Logf("%d ops, %d writes acknowledged, %d with unknown outcome (%d not applied); stop took %v; recovery %v",
				len(ops), len(acked), len(unknown), len(lost), stoppedAt.Sub(stopBegin).Round(time.Millisecond), first.Sub(up).Round(time.Millisecond))
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
