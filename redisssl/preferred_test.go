package redisssl

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestPreferredDualEndpoint: an endpoint that serves TLS and plaintext on
// one port (a managed endpoint during "enable SSL"; here a relay in front
// of one Redis's plaintext and TLS ports) gets TLS under PREFERRED; and a
// PREFERRED client that found it plaintext-only encrypts its new
// connections within 10 s of the endpoint starting to serve TLS, with no
// restart and no error.
func TestPreferredDualEndpoint(t *testing.T) {
	_, servers := env(t)
	s := servers[1]
	newClient := func(t *testing.T, p *mitm.Proxy) *redis.Client {
		// A connection idle for a nanosecond is replaced: every command
		// runs on a new connection.
		c, err := NewClientFromOptions(&redis.Options{Addr: p.Addr(), Password: testenv.RedisPassword, ConnMaxIdleTime: time.Nanosecond},
			sslconn.WithMode(sslconn.Preferred))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	start := func(t *testing.T) *mitm.Proxy {
		p, err := mitm.Start(mitm.Config{Engine: mitm.Redis, Attack: mitm.Relay, Upstream: testenv.Addr(s.Port)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	ctx := context.Background()

	t.Run("serves both", func(t *testing.T) {
		p := start(t)
		p.SetTLSUpstream(testenv.Addr(s.TLSPort))
		c := newClient(t, p)
		st, err := Verify(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Encrypted {
			// The TLS answer came after the grace (a loaded machine): it
			// is still heard, and the next connections are TLS.
			t.Log("first connection plaintext")
			deadline := time.Now().Add(10 * time.Second)
			for !st.Encrypted {
				if time.Now().After(deadline) {
					t.Fatal("still plaintext 10 s later")
				}
				time.Sleep(10 * time.Millisecond)
				if st, err = Verify(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 5 {
			if st, err := Verify(ctx, c); err != nil || !st.Encrypted {
				t.Fatalf("connection %d: %+v %v", i+1, st, err)
			}
		}
	})

	t.Run("starts serving TLS", func(t *testing.T) {
		p := start(t)
		c := newClient(t, p)
		if st, err := Verify(ctx, c); err != nil || st.Encrypted {
			t.Fatalf("before: %+v %v", st, err)
		}
		p.SetTLSUpstream(testenv.Addr(s.TLSPort))
		on := time.Now()
		for {
			st, err := Verify(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if st.Encrypted {
				t.Logf("encrypted %v after the endpoint started serving TLS", time.Since(on).Round(time.Millisecond))
				break
			}
			if time.Since(on) > 10*time.Second {
				t.Fatal("new connections still plaintext 10 s after the endpoint started serving TLS")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Known now: every new connection is encrypted.
		for i := range 5 {
			if st, err := Verify(ctx, c); err != nil || !st.Encrypted {
				t.Fatalf("connection %d after: %+v %v", i+1, st, err)
			}
		}
	})
}
