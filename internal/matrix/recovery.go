package matrix

import (
	"context"
	"testing"
	"time"
)

// BenchRecovery measures, per restart, the time from the server accepting
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
	var total time.Duration
	var errs int
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
		if d := doneAt.Sub(up); d > 0 {
			total += d
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-recover/op")
	b.ReportMetric(float64(errs)/float64(b.N), "app-errors/op")
}
