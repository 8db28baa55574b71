package redisssl

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestConflictTable: every TLS setting of a go-redis URL against every
// ssl-mode (and none), through the public constructors, without
// connecting. An explicit mode refines the URL's setting and is an error
// only when they contradict: rediss:// (TLS on) with DISABLED, and
// skip_verify=true (verification off) with DISABLED or a verifying mode.
func TestConflictTable(t *testing.T) {
	const pw = "Conflict-Secret-42"
	addr := matrix.ClosedAddr(t)
	natives := []struct {
		name    string // how the URL says it, for the error text
		url     string
		mode    sslconn.Mode // what it means without ssl-mode
		tlsOn   bool
		verifOn bool
	}{
		{"redis://", "redis://:" + pw + "@" + addr + "/0?", sslconn.Preferred, false, false},
		{"rediss://", "rediss://:" + pw + "@" + addr + "/0?", sslconn.VerifyIdentity, true, true},
		{"skip_verify=true", "rediss://:" + pw + "@" + addr + "/0?skip_verify=true&", sslconn.Required, true, false},
	}
	constructors := map[string]func(string) (interface{ Close() error }, error){
		"NewClient": func(u string) (interface{ Close() error }, error) { return NewClient(u, sslconn.WithRetryBudget(-1)) },
		"NewClusterClient": func(u string) (interface{ Close() error }, error) {
			return NewClusterClient(u, sslconn.WithRetryBudget(-1))
		},
		"NewFailoverClient": func(u string) (interface{ Close() error }, error) {
			return NewFailoverClient(u+"&master_name=mymaster", sslconn.WithRetryBudget(-1))
		},
	}
	for _, n := range natives {
		for _, explicit := range append([]sslconn.Mode{0}, core.Modes...) {
			u, name := n.url, n.name+"/no-ssl-mode"
			if explicit != 0 {
				u += "ssl-mode=" + explicit.String()
				name = n.name + "/" + explicit.String()
			}
			// The rule: TLS on and DISABLED, or verification off and a
			// verifying mode, contradict; anything else refines.
			conflict := explicit != 0 && ((n.tlsOn && explicit == sslconn.Disabled) ||
				(n.tlsOn && !n.verifOn && explicit >= sslconn.VerifyCA))
			want := n.mode
			if explicit != 0 {
				want = explicit
			}
			t.Run(name, func(t *testing.T) {
				for cname, construct := range constructors {
					t.Run(cname, func(t *testing.T) {
						c, err := construct(u)
						if !conflict {
							if err != nil {
								t.Fatal(err)
							}
							c.Close()
							return
						}
						if err == nil {
							c.Close()
						}
						matrix.CheckConflict(t, err, n.name, explicit, pw)
					})
				}
				// The mode the constructors resolved (the same resolver).
				cfg, err := core.ResolveDSN("redis", u)
				if conflict {
					matrix.CheckConflict(t, err, n.name, explicit, pw)
					return
				}
				if err != nil {
					t.Fatalf("ResolveDSN: %v", err)
				}
				if cfg.Config.Mode() != want {
					t.Fatalf("mode %s, want %s", cfg.Config.Mode(), want)
				}
			})
		}
	}
}

// TestUnavailable: a port nobody listens on ends, once the retry budget or
// the caller's context runs out, in ErrUnavailable with the mode, the
// address, the attempts made and the last cause (connection refused). The
// URL says the mode in go-redis's own terms: redis:// is PREFERRED,
// rediss:// with skip_verify=true REQUIRED.
func TestUnavailable(t *testing.T) {
	const pw = "Unavailable-Secret-7"
	matrix.RunUnavailable(t, pw, func(ctx context.Context, addr string, mode sslconn.Mode, opts ...sslconn.Option) error {
		var u string
		switch mode {
		case sslconn.Preferred:
			u = "redis://:" + pw + "@" + addr + "/0"
		case sslconn.Required:
			u = "rediss://:" + pw + "@" + addr + "/0?skip_verify=true"
		default:
			u = "redis://:" + pw + "@" + addr + "/0?ssl-mode=" + mode.String()
		}
		c, err := NewClient(u, opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Ping(ctx).Err()
	})
}

// TestVerifyThroughProxy: Verify finds the connection that carried its
// ECHO by the connection itself, so it reports the truth through a TCP
// proxy, where the server sees the proxy's address, not the client's.
func TestVerifyThroughProxy(t *testing.T) {
	certs, servers := env(t)
	tests := []struct {
		name      string
		port      int // of S1: its TLS or its plaintext port
		tls       bool
		mode      sslconn.Mode
		encrypted bool
	}{
		{"VERIFY_IDENTITY", servers[1].TLSPort, true, sslconn.VerifyIdentity, true},
		{"REQUIRED", servers[1].TLSPort, true, sslconn.Required, true},
		{"PREFERRED on the TLS port", servers[1].TLSPort, true, sslconn.Preferred, true},
		{"PREFERRED on the plaintext port", servers[1].Port, false, sslconn.Preferred, false},
		{"DISABLED", servers[1].Port, false, sslconn.Disabled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := mitm.Start(mitm.Config{Engine: mitm.Redis, Attack: mitm.Relay, Upstream: testenv.Addr(tt.port), UpstreamTLS: tt.tls})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, err := NewClient("redis://:"+testenv.RedisPassword+"@"+p.Addr()+"/0?ssl-mode="+tt.mode.String()+"&ssl-ca="+certs.CA,
				sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := Verify(ctx, c)
			if err != nil {
				c.Close()
				t.Fatal(err)
			}
			matrix.CheckStatus(t, "Verify", st, tt.encrypted)
			matrix.CheckMode(t, "Verify", st, tt.mode)
			// The connection Verify asked went through the proxy, and in
			// plaintext the proxy read the probe.
			if p.Active() == 0 {
				t.Error("no connection through the proxy")
			}
			if seen := bytes.Contains(p.Seen(), []byte("sslconn_verify_")); seen == tt.encrypted {
				t.Errorf("the proxy read the probe: %v; encrypted: %v", seen, tt.encrypted)
			}
			c.Close()
			matrix.WaitNoConns(t, p)
		})
	}
	// A cluster client reached through a proxy to its seed: Verify checks
	// a connection to every master, found by the probe as well.
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		nodes := lazyCluster.Get(t)
		p, err := mitm.Start(mitm.Config{Engine: mitm.Redis, Attack: mitm.Relay, Upstream: testenv.Addr(nodes[0].TLSPort), UpstreamTLS: true})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c, err := NewClusterClient("redis://:"+testenv.RedisPassword+"@"+p.Addr()+"?ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA,
			sslconn.WithRetryBudget(-1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := Verify(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		matrix.CheckStatus(t, "Verify", st, true)
		// And on each master's own client.
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			st, err := Verify(ctx, n)
			if err != nil {
				return err
			}
			if !st.Encrypted {
				return fmt.Errorf("%s: %+v", n.Options().Addr, st)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
