package core

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// TestKnownBook: which dials share the process's book, and the book's
// bound.
func TestKnownBook(t *testing.T) {
	t.Run("default dialer", func(t *testing.T) {
		c := preferredConfig(t, testPing)
		own, err := Resolve(Spec{}, sslconn.WithMode(sslconn.Preferred), sslconn.WithDialer(new(net.Dialer).DialContext))
		if err != nil {
			t.Fatal(err)
		}
		closure := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, addr)
		}
		for _, tt := range []struct {
			name string
			dial sslconn.DialFunc
			want bool
		}{
			{"the Config's", c.Dialer(), true},
			{"another Config's", preferredConfig(t, nil).Dialer(), true},
			{"WithDialer's", own.Dialer(), false},
			{"a net.Dialer's", new(net.Dialer).DialContext, false},
			{"a closure", closure, false},
			{"none", nil, false},
		} {
			if got := isNetDial(tt.dial); got != tt.want {
				t.Errorf("%s: shared %t, want %t", tt.name, got, tt.want)
			}
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var b addrBook
		b.learn("keep:1")
		for i := range maxKnown + 10 {
			if i%100 == 0 {
				b.get("keep:1") // in use: never the one evicted
			}
			b.learnTLS(fmt.Sprintf("a:%d", i))
		}
		if n := len(b.m); n != maxKnown {
			t.Fatalf("%d addresses known, want at most %d", n, maxKnown)
		}
		if _, plain := b.get("keep:1"); !plain {
			t.Fatal("the address in use was evicted")
		}
	})
	t.Run("a refused dial forgets for every client", func(t *testing.T) {
		e := startEndpoint(t, servePlain)
		addr := e.l.Addr().String()
		if encrypted(t, preferredConfig(t, testPing), addr) {
			t.Fatal("encrypted on a plaintext port")
		}
		if _, plain := process.book.get(addr); !plain {
			t.Fatal("the process did not learn the plaintext port")
		}
		e.l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := preferredConfig(t, testPing).DialMode(ctx, sslconn.Preferred, "tcp", addr, nil); err == nil {
			conn.Close()
			t.Fatal("connected to a closed port")
		}
		if process.book.has(addr) {
			t.Fatal("a refused dial left the address known")
		}
	})
}

// TestProbeAfterFollowsDistance: at an address that answered TLS, the
// probe waits tlsLate, or twice the last TLS answer's time from a distant
// server, so that a server 25 ms away is not probed on every connection.
func TestProbeAfterFollowsDistance(t *testing.T) {
	var b addrBook
	const addr = "db.example:6379"
	if got := b.probeAfter(addr); got != tlsLate {
		t.Fatalf("unknown address: %v; want %v", got, tlsLate)
	}
	b.learnTLS(addr)
	b.noteAnswer(addr, 10*time.Millisecond)
	if got := b.probeAfter(addr); got != tlsLate {
		t.Errorf("near: %v; want %v", got, tlsLate)
	}
	b.noteAnswer(addr, 60*time.Millisecond)
	if got := b.probeAfter(addr); got != 120*time.Millisecond {
		t.Errorf("far: %v; want 120ms", got)
	}
	b.learn(addr) // plaintext now: nothing more to note
	b.noteAnswer(addr, time.Second)
	if got := b.probeAfter(addr); got != 120*time.Millisecond {
		t.Errorf("after plaintext: %v; want the last TLS figure", got)
	}
}
