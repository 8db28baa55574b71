package delay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// server runs handle on every connection accepted on a loopback port.
func server(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

func start(t *testing.T, target string, oneWay, jitter time.Duration) *Relay {
	t.Helper()
	r, err := Start(target, oneWay, jitter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func dial(t *testing.T, r *Relay) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func exchange(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	if string(b) != msg {
		t.Fatalf("got %q, want %q", b, msg)
	}
}

// waitStats waits for the relay's counters to settle on want: the
// relay counts on its own goroutines.
func waitStats(t *testing.T, r *Relay, want Stats) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats: %v, want %v", r.Stats(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRoundTrips(t *testing.T) {
	t.Run("client-first", func(t *testing.T) {
		r := start(t, server(t, echo), 0, 0)
		c := dial(t, r)
		exchange(t, c, "ping")
		exchange(t, c, "again")
		waitStats(t, r, Stats{Conns: 1, Waits: 2, ClientTurns: 2, Up: 9, Down: 9})
		if got := r.Stats().RoundTrips(); got != 3 {
			t.Errorf("round trips: %d, want 3", got)
		}
	})
	t.Run("server-first", func(t *testing.T) {
		r := start(t, server(t, func(c net.Conn) { _, _ = c.Write([]byte("hi")); echo(c) }), 0, 0)
		c := dial(t, r)
		b := make([]byte, 2)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		exchange(t, c, "ping")
		// The greeting is a wait the client turns miss.
		waitStats(t, r, Stats{Conns: 1, Waits: 2, ClientTurns: 1, Up: 4, Down: 6})
	})
	t.Run("pipelined", func(t *testing.T) {
		// With no delay an answer may come back between two writes.
		r := start(t, server(t, echo), 20*time.Millisecond, 0)
		c := dial(t, r)
		for _, m := range []string{"a", "b", "c"} {
			if _, err := c.Write([]byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		b := make([]byte, 3)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		// However the replies were split, one write burst is one turn
		// and the replies that follow it one wait.
		waitStats(t, r, Stats{Conns: 1, Waits: 1, ClientTurns: 1, Up: 3, Down: 3})
	})
	t.Run("reset", func(t *testing.T) {
		r := start(t, server(t, echo), 0, 0)
		exchange(t, dial(t, r), "x")
		waitStats(t, r, Stats{Conns: 1, Waits: 1, ClientTurns: 1, Up: 1, Down: 1})
		before := r.Stats()
		r.Reset()
		exchange(t, dial(t, r), "y")
		waitStats(t, r, before)
		if d := r.Stats().Sub(before); d != (Stats{}) {
			t.Errorf("Sub: %v", d)
		}
	})
}

// TestDelay: a request and its answer take the TCP handshake's RTT plus
// one RTT, and later exchanges one RTT each.
func TestDelay(t *testing.T) {
	const oneWay = 10 * time.Millisecond
	r := start(t, server(t, echo), oneWay, 0)
	begin := time.Now()
	c := dial(t, r)
	exchange(t, c, "ping")
	if got := time.Since(begin); got < 4*oneWay {
		t.Errorf("first exchange took %v, want at least %v", got, 4*oneWay)
	}
	begin = time.Now()
	exchange(t, c, "pong")
	if got := time.Since(begin); got < 2*oneWay {
		t.Errorf("second exchange took %v, want at least %v", got, 2*oneWay)
	}
}

// TestOrder: jitter delays chunks but never reorders them.
func TestOrder(t *testing.T) {
	r := start(t, server(t, echo), time.Millisecond, 3*time.Millisecond)
	c := dial(t, r)
	var want bytes.Buffer
	go func() {
		w := bufio.NewWriterSize(c, 16)
		for i := range 2000 {
			fmt.Fprintf(w, "%d\n", i)
			if i%50 == 0 {
				w.Flush()
				time.Sleep(100 * time.Microsecond)
			}
		}
		w.Flush()
	}()
	for i := range 2000 {
		fmt.Fprintf(&want, "%d\n", i)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes reordered")
	}
}

// TestRefused: a target that refuses closes the client's connection.
func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	r := start(t, target, 0, 0)
	c := dial(t, r)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a refused connection succeeded")
	}
	if got := r.Stats().Conns; got != 1 {
		t.Errorf("conns: %d, want 1", got)
	}
}

// TestStop: Stop ends open connections to a server that never answers, in
// bounded time, and the client sees the end.
func TestStop(t *testing.T) {
	silent := server(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	r, err := Start(silent, time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r)
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Stop succeeded")
	}
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
		t.Error("the relay still accepts after Stop")
	}
}
