package matrix

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchRecovery measures, per restart (the median), the time from the server accepting
// connections again to the first successful operation, and how many errors
// the application saw meanwhile. Each iteration stops the server, starts
// an operation while it is down, and brings it back 500 ms later. An
// operation that fails is retried every 10 ms, as an application must with
// a bare driver; with the library there should be nothing to retry.
func BenchRecovery(b *testing.B, stop, start func() error, op func(context.Context) error) {
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
		upCh := make(chan time.Time, 1)
		go func() {
			time.Sleep(500 * time.Millisecond)
			if err := start(); err != nil {
				b.Error(err)
			}
			upCh <- time.Now()
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
		up := <-upCh
		took = append(took, max(doneAt.Sub(up), 0))
	}
	b.StopTimer()
	// The median: one slow restart (a MariaDB that takes a second longer to
	// come up) should not speak for the others.
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-to-recover/op")
	b.ReportMetric(float64(errs)/float64(b.N), "app-errors/op")
}
