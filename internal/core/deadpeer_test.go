package core

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/netns"
)

// TestDeadPeer: an armed connection to a server that goes silent fails
// within the bound, in flight or idle; one to a server that is merely slow
// (longer than the bound) is not cut.
func TestDeadPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a network namespace")
	}
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	h, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	ln, err := h.Listen("tcp", h.Addr(7000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const (
		bound = 3 * time.Second
		slow  = 2 * bound // the healthy server's answer takes this long
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if b[0] == 's' {
						time.Sleep(slow)
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	// Dialed and armed as Config.watch arms every connection it keeps.
	armed := func(bound time.Duration) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		armDeadPeer(c, bound)
		t.Cleanup(func() { c.Close() })
		return c
	}
	conn := func() net.Conn { return armed(bound) }
	ask := func(c net.Conn, b byte) error {
		if _, err := c.Write([]byte{b}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(4 * slow))
		_, err := c.Read(make([]byte, 1))
		return err
	}
	slowConn, inFlight, idle := conn(), conn(), conn()
	// One armed with sslconn's default bound, which a keepalive probe outlives.
	longBound := armed(10 * time.Second)
	for _, c := range []net.Conn{inFlight, idle, longBound} {
		if err := ask(c, 'x'); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := ask(slowConn, 's'); err != nil {
		t.Fatalf("a server answering after %v (bound %v) was cut after %v: %v", slow, bound, time.Since(start), err)
	}

	if err := h.Silence(); err != nil {
		t.Fatal(err)
	}
	// The margin is the kernel's: a retransmission or probe timer fires
	// within a fraction of a second of the bound.
	limit := bound + 2*time.Second
	// Once a keepalive probe has gone unanswered, the check before a write
	// refuses the idle connection: the request would only wait for the bound.
	checked := newWatch(longBound)
	time.Sleep(silentAfter + keepAliveEvery)
	if err := checked.closed(); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("the check before a write on an idle connection to a silent server says %v, want ETIMEDOUT", err)
	}
	start = time.Now()
	idleErr := make(chan error, 1)
	go func() {
		idle.SetReadDeadline(time.Now().Add(4 * slow))
		_, err := idle.Read(make([]byte, 1))
		idleErr <- err
	}()
	err = ask(inFlight, 'x')
	if took := time.Since(start); !errors.Is(err, syscall.ETIMEDOUT) || took > limit {
		t.Errorf("a request into the silence ended after %v with %v; want ETIMEDOUT within %v", took, err, limit)
	}
	err = <-idleErr
	if took := time.Since(start); !errors.Is(err, syscall.ETIMEDOUT) || took > limit+keepAliveIdle {
		t.Errorf("an idle connection to the silent server ended after %v with %v; want ETIMEDOUT within %v", took, err, limit+keepAliveIdle)
	}
}
