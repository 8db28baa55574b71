package netns

import (
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMain serves NETNS_ECHO's address as an echo server when the test
// binary is started inside a host.
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETNS_ECHO"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(2)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(2)
			}
			go io.Copy(c, c)
		}
	}
	os.Exit(m.Run())
}

// TestSilence starts a listener inside a host, then silences and restores
// the host: the silent host neither accepts nor refuses.
func TestSilence(t *testing.T) {
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
	port := 18080
	// The test binary itself serves the port inside the host (TestMain).
	argv := h.Command(os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NETNS_ECHO="+h.Addr(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var c net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err = net.DialTimeout("tcp", h.Addr(port), time.Second); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	if c, err := net.DialTimeout("tcp", h.Addr(port), 500*time.Millisecond); err == nil {
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
	c, err = net.DialTimeout("tcp", h.Addr(port), 5*time.Second)
	if err != nil {
		t.Fatalf("after Speak: %v", err)
	}
	c.Close()
}
