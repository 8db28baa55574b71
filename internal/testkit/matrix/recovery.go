package matrix

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// BenchRecovery measures, per restart (the median), the time from the
// server's port at addr accepting connections again (stamped by a probe
// that connects in a tight loop, testenv.ProbeAccept) to the first
// successful operation, and how many errors the application saw meanwhile.
// Each iteration stops the server, starts an operation while it is down,
// and brings it back 500 ms later. An operation that fails is retried
// every 10 ms, as an application must with a bare driver; with the library
// there should be nothing to retry. An operation that succeeds before the
// port accepts is a broken harness, and fails the benchmark.
func BenchRecovery(b *testing.B, addr string, stop, start func() error, op func(context.Context) error) {
	ctx := context.Background()
	if err := op(ctx); err != nil {
		b.Fatalf("before: %v", err)
	}
	var (
		took []time.Duration
		errs int
	)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		probe := testenv.ProbeAccept(addr)
		started := make(chan error, 1)
		go func() {
			time.Sleep(500 * time.Millisecond)
			started <- start()
		}()
		var doneAt time.Time
		for {
			err := op(ctx)
			if err == nil {
				doneAt = time.Now()
				break
			}
			errs++
			time.Sleep(10 * time.Millisecond)
		}
		if err := <-started; err != nil {
			b.Fatal(err)
		}
		up, err := probe.Wait(startTimeout)
		if err != nil {
			b.Fatal(err)
		}
		d := doneAt.Sub(up)
		if d < 0 {
			b.Fatalf("the operation succeeded %v before %s accepted connections again", -d, addr)
		}
		took = append(took, d)
	}
	b.StopTimer()
	// The median: one slow restart (a MariaDB that takes a second longer to
	// come up) should not speak for the others.
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-to-recover/op")
	b.ReportMetric(float64(errs)/float64(b.N), "app-errors/op")
}
