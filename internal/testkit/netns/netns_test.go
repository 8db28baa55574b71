package netns

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoHost makes a host with an echo server on port, both removed when
// the test ends; it skips where hosts cannot be made.
func echoHost(t *testing.T, port int) (*Host, net.Listener) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs network namespaces")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	ln, err := h.Listen("tcp", h.Addr(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return h, ln
}

// TestSilence starts a listener inside a host, then silences and restores
// the host: the silent host neither accepts nor refuses.
func TestSilence(t *testing.T) {
	h, ln := echoHost(t, 18080)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the host: %v", err)
	}
	defer c.Close()
	echo := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := c.Read(make([]byte, 1))
		return err
	}
	if err := echo(c); err != nil {
		t.Fatalf("echo: %v", err)
	}

	if err := h.Silence(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a silent host accepted a connection")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a silent host should time out, not answer: %v after %v", err, time.Since(start))
	}
	// An established connection: the request goes out and nothing comes
	// back, not even a reset.
	if err := echo(c); err == nil {
		t.Fatal("a silent host answered")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a silent host should leave the read waiting: %v", err)
	}
	if err := h.Speak(); err != nil {
		t.Fatal(err)
	}
	c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("after Speak: %v", err)
	}
	c.Close()
}

// TestReset: Reset aborts the host's connections with a reset the client
// sees, and the server keeps accepting.
func TestReset(t *testing.T) {
	h, ln := echoHost(t, 18081)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := h.Reset(); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after Reset the client reads %v, want ECONNRESET", err)
	}
	c2, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	c2.Close()
}
