package testenv

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeTB records Skip and Fatalf and ends the goroutine, as testing's do.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skip(args ...any) { f.skipped = fmt.Sprint(args...); runtime.Goexit() }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// get calls l.Get with a fakeTB in a goroutine of its own.
func get[T any](l *Lazy[T]) (v T, f *fakeTB) {
	f = &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		v = l.Get(f)
	}()
	<-done
	return v, f
}

type stopper struct{ stops atomic.Int32 }

func (s *stopper) Stop() error { s.stops.Add(1); return nil }

// setShort sets -short for the rest of the test.
func setShort(t *testing.T, v bool) {
	was := flag.Lookup("test.short").Value.String()
	t.Cleanup(func() { flag.Set("test.short", was) })
	if err := flag.Set("test.short", fmt.Sprint(v)); err != nil {
		t.Fatal(err)
	}
}

func TestLazy(t *testing.T) {
	setShort(t, false)
	var starts atomic.Int32
	l := NewLazy(func() (*stopper, error) { starts.Add(1); return &stopper{}, nil })
	var wg sync.WaitGroup
	vals := make([]*stopper, 8)
	for i := range vals {
		wg.Add(1)
		go func() { defer wg.Done(); vals[i] = l.Get(t) }()
	}
	wg.Wait()
	if starts.Load() != 1 {
		t.Fatalf("start ran %d times", starts.Load())
	}
	for _, v := range vals {
		if v != vals[0] || v == nil {
			t.Fatalf("Get returned different values: %v", vals)
		}
	}
	if err := l.cleanup(); err != nil || vals[0].stops.Load() != 1 {
		t.Fatalf("cleanup: %v, %d stops", err, vals[0].stops.Load())
	}
	if err := l.cleanup(); err != nil || vals[0].stops.Load() != 1 {
		t.Fatalf("second cleanup: %v, %d stops", err, vals[0].stops.Load())
	}

	bad := NewLazy(func() (int, error) { starts.Add(1); return 0, errors.New("no server") })
	for range 2 {
		if _, f := get(bad); f.failed != "testenv: no server" {
			t.Fatalf("Get after a failed start: %q", f.failed)
		}
	}
	if starts.Load() != 2 {
		t.Fatalf("failed start ran %d times", starts.Load()-1)
	}
}

func TestShort(t *testing.T) {
	setShort(t, true)
	if !Short() || !testing.Short() {
		t.Fatal("Short() false with -short")
	}
	l := NewLazy(func() (int, error) { t.Error("start ran with -short"); return 1, nil })
	if _, f := get(l); f.skipped != "needs database servers; not run with -short" {
		t.Fatalf("Get with -short: skipped %q, failed %q", f.skipped, f.failed)
	}
	setShort(t, false)
	if Short() {
		t.Fatal("Short() true without -short")
	}
}
