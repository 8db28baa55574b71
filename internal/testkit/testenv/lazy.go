package testenv

import (
	"errors"
	"flag"
	"io"
	"sync"
	"testing"
)

// Short reports whether the tests run with -short, which skips every test
// that needs database servers. Unlike testing.Short it may be called before
// flag.Parse (it then says false) and from code that is not a test.
func Short() bool {
	f := flag.Lookup("test.short")
	return f != nil && f.Value.String() == "true"
}

// Lazy is a value, typically the servers a package's tests share, that is
// made on the first Get and then shared: servers start on the first test
// that needs them, once per package (once per test binary), and not at all
// when no test that needs them runs (-short, -run selecting others, a
// fuzzing worker). Get is safe for parallel tests: the others wait for the
// first. Servers started through this package (StartMariaDB, StartRedis
// ...) are stopped by Cleanup; so is the value itself if it has a Close or
// Stop method.
//
//	var servers = testenv.NewLazy(func() (*testenv.Server, error) {
//		return testenv.StartRedis(testenv.TLS{Off: true})
//	})
//
//	func TestX(t *testing.T) {
//		s := servers.Get(t)
//		...
//	}
type Lazy[T any] struct {
	start   func() (T, error)
	once    sync.Once
	mu      sync.Mutex // guards val, err and done for Cleanup
	val     T
	err     error
	done    bool
	cleaned bool
}

var (
	laziesMu sync.Mutex
	lazies   []interface{ cleanup() error }
)

// NewLazy returns a Lazy whose value start makes, on the first Get.
func NewLazy[T any](start func() (T, error)) *Lazy[T] {
	l := &Lazy[T]{start: start}
	laziesMu.Lock()
	lazies = append(lazies, l)
	laziesMu.Unlock()
	return l
}

// Get returns the value, running start on the first call. With -short it
// skips the test instead ("needs database servers"); if start failed it
// fails the test with start's error, on this and every later call.
func (l *Lazy[T]) Get(t testing.TB) T {
	t.Helper()
	if Short() {
		t.Skip("needs database servers; not run with -short")
	}
	l.once.Do(func() {
		// If start panics, later calls report that rather than a zero value.
		l.setResult(*new(T), errors.New("testenv: start panicked in an earlier test"))
		v, err := l.start()
		l.setResult(v, err)
	})
	l.mu.Lock()
	v, err := l.val, l.err
	l.mu.Unlock()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return v
}

func (l *Lazy[T]) setResult(v T, err error) {
	l.mu.Lock()
	l.val, l.err, l.done = v, err, true
	l.mu.Unlock()
}

// cleanup stops or closes the value, once, if start made one.
func (l *Lazy[T]) cleanup() error {
	l.mu.Lock()
	v, ok := l.val, l.done && l.err == nil && !l.cleaned
	l.cleaned = l.cleaned || ok
	l.mu.Unlock()
	if !ok {
		return nil
	}
	switch c := any(v).(type) {
	case interface{ Stop() error }:
		return c.Stop()
	case interface{ Stop() }:
		c.Stop()
	case io.Closer:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}

func cleanupLazies() error {
	laziesMu.Lock()
	list := append([]interface{ cleanup() error }(nil), lazies...)
	laziesMu.Unlock()
	var errs []error
	for _, l := range list {
		errs = append(errs, l.cleanup())
	}
	return errors.Join(errs...)
}
