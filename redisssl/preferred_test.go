package redisssl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
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

	// Each round is a new client's first connection, nothing known of the
	// address in the process.
	const rounds = 10
	t.Run("serves both, plaintext later", func(t *testing.T) {
		// The plaintext answer comes 100 ms late, far beyond any grace:
		// the TLS answer is first, so the first connection is TLS, every
		// time.
		p := start(t)
		p.SetTLSUpstream(testenv.Addr(s.TLSPort))
		p.SetPlainDelay(100 * time.Millisecond)
		for i := range rounds {
			core.ForgetPreferred(p.Addr())
			st, err := Verify(ctx, newClient(t, p))
			if err != nil || !st.Encrypted {
				t.Fatalf("round %d: first connection %+v %v, want TLS", i+1, st, err)
			}
		}
		// And all the next ones.
		c := newClient(t, p)
		for i := range 5 {
			if st, err := Verify(ctx, c); err != nil || !st.Encrypted {
				t.Fatalf("connection %d: %+v %v", i+1, st, err)
			}
		}
	})

	t.Run("TLS answered with an alert", func(t *testing.T) {
		// The ClientHello answered by a Redis limited to TLS 1.0/1.1 (S7):
		// a protocol_version alert. The port speaks TLS, so PREFERRED
		// fails with ErrTLSVersion, every time, never plaintext. The
		// plaintext answer comes 100 ms late: this Redis answers a
		// ClientHello in 0.1 ms typically but up to 16 ms on a loaded
		// machine (measured), past any grace that keeps a plaintext-only
		// port cheap; core's TestPreferredStrict tests the grace itself,
		// against a server in the test's control.
		p := start(t)
		p.SetTLSUpstream(testenv.Addr(servers[7].TLSPort))
		p.SetPlainDelay(100 * time.Millisecond)
		for i := range rounds {
			core.ForgetPreferred(p.Addr())
			err := newClient(t, p).Ping(ctx).Err()
			if err == nil {
				t.Fatalf("round %d: connected to a port that answered the ClientHello with an alert", i+1)
			}
			if !errors.Is(err, sslconn.ErrTLSVersion) {
				t.Fatalf("round %d: %v, want ErrTLSVersion", i+1, err)
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
