package redisssl

import (
	"context"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/mitm"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func target(t testing.TB) matrix.Target {
	certs, servers := env(t)
	return matrix.Target{
		Engine:      mitm.Redis,
		Upstream:    testenv.Addr(servers[1].TLSPort),
		UpstreamTLS: true,
		Certs:       certs,
		Connect: func(ctx context.Context, addr string, mode sslconn.Mode, marker string, opts ...sslconn.Option) error {
			c, err := NewClient("redis://:"+testenv.RedisPassword+"@"+addr+"/0?ssl-mode="+mode.String()+"&ssl-ca="+certs.CA, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Echo(ctx, marker).Err()
		},
	}
}

// TestAttacks: a man in the middle against every mode (see matrix.RunAttacks).
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target(t)) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target(t)) }

// TestNoLeaks: concurrent clients and commands, then Close, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	certs := lazyCerts.Get(t)
	matrix.RunNoLeaks(t, target(t), 8, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
		c, err := NewClient("redis://:" + testenv.RedisPassword + "@" + addr + "/0?ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error { return c.Ping(ctx).Err() }, c.Close, nil
	})
}

// TestSecrets: no password in errors, logs, printed values or panics (see
// matrix.RunSecrets).
func TestSecrets(t *testing.T) {
	certs, servers := env(t)
	matrix.RunSecrets(t, matrix.SecretsTarget{
		Certs: certs, Good: testenv.Addr(servers[1].TLSPort), Foreign: testenv.Addr(servers[4].TLSPort), Password: testenv.RedisPassword,
		DSN:       func(addr, pw, params string) string { return "redis://:" + pw + "@" + addr + "/0?" + params },
		Malformed: func(pw string) string { return "redis://:" + pw + "@[127.0.0.1:1/0" },
		Connect: func(u string, opts ...sslconn.Option) ([]any, error) {
			c, err := NewClient(u, opts...)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Not c.Options(): go-redis's own struct holds the password as the driver keeps it.
			return []any{c}, c.Ping(ctx).Err()
		},
	})
}
