package redisssl

import (
	"context"
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func target(t testing.TB) matrix.Target {
	certs, servers := env(t)
	return matrix.Target{
		Engine:      mitm.Redis,
		Upstream:    testenv.Addr(servers[1].TLSPort),
		UpstreamTLS: true,
		Certs:       certs,
		// AUTH sends the password as is: readable in a plaintext session.
		Password:                testenv.RedisPassword,
		PlainLoginShowsPassword: true,
		// DISABLED against a server that never answers: go-redis's own
		// timeouts end it, measured 5.0 s, not the handshake timeout
		// and budget (1 s and 2 s here) that bound every other mode.
		DisabledStall: 5 * time.Second,
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
		Extra: optionsProbes(certs, testenv.Addr(servers[1].TLSPort), testenv.Addr(servers[4].TLSPort)),
	})
}

// optionsProbes are TestSecrets' probes of the FromOptions constructors:
// passwords in the options (the master's and the Sentinel's) or from a
// CredentialsProvider, right and wrong, through conflicts, foreign
// certificates, exhausted retries and a good connection.
func optionsProbes(certs *testenv.Certs, good, foreign string) map[string]matrix.Probe {
	closed, err := testenv.FreePort()
	if err != nil {
		panic(err)
	}
	verified := func(log *slog.Logger, extra ...sslconn.Option) []sslconn.Option {
		return append([]sslconn.Option{sslconn.WithLogger(log), sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA)}, extra...)
	}
	ping := func(c redis.UniversalClient, err error) ([]any, error) {
		if err != nil {
			return nil, err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// Not a *redis.ClusterClient: go-redis's own struct has no String
		// method, and %s of it prints its options, password and all, as
		// with go-redis alone (c.Options() likewise).
		if _, ok := c.(*redis.ClusterClient); ok {
			return nil, c.Ping(ctx).Err()
		}
		return []any{c}, c.Ping(ctx).Err()
	}
	skip := &tls.Config{InsecureSkipVerify: true}
	return map[string]matrix.Probe{
		"options: connected": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: good, Password: testenv.RedisPassword}, verified(log)...)))
		},
		"options: wrong password": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: good, Password: matrix.SecretDSN}, verified(log)...)))
		},
		"options: wrong password from a CredentialsProvider": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: good,
				CredentialsProvider: func() (string, string) { return "default", matrix.SecretDSN }}, verified(log)...)))
		},
		"options: foreign certificate": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: foreign, Password: matrix.SecretDSN}, verified(log, sslconn.WithRetryBudget(-1))...)))
		},
		"options: retries until the budget": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: testenv.Addr(closed), Password: matrix.SecretDSN},
				sslconn.WithLogger(log), sslconn.WithMode(sslconn.Required), sslconn.WithRetryBudget(400*time.Millisecond))))
		},
		"options: conflict": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClientFromOptions(&redis.Options{Addr: good, Password: matrix.SecretDSN, TLSConfig: skip}, verified(log)...)))
		},
		"cluster options: wrong password": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClusterClientFromOptions(&redis.ClusterOptions{Addrs: []string{good}, Password: matrix.SecretDSN}, verified(log)...)))
		},
		"cluster options: conflict": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewClusterClientFromOptions(&redis.ClusterOptions{Addrs: []string{good}, Password: matrix.SecretDSN, TLSConfig: skip}, verified(log)...)))
		},
		"failover options: conflict": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewFailoverClientFromOptions(&redis.FailoverOptions{SentinelAddrs: []string{good}, MasterName: "mymaster",
				Password: matrix.SecretDSN, SentinelPassword: matrix.SecretDSN, TLSConfig: skip}, verified(log)...)))
		},
		"failover options: no such master": func(log *slog.Logger) ([]any, error) {
			return ping(universal(NewFailoverClientFromOptions(&redis.FailoverOptions{SentinelAddrs: []string{good}, MasterName: "mymaster",
				Password: matrix.SecretDSN, SentinelPassword: matrix.SecretDSN}, verified(log, sslconn.WithRetryBudget(-1))...)))
		},
		"universal options: wrong password": func(log *slog.Logger) ([]any, error) {
			return ping(NewUniversalClientFromOptions(&redis.UniversalOptions{Addrs: []string{good}, Password: matrix.SecretDSN}, verified(log)...))
		},
		"universal options: conflict": func(log *slog.Logger) ([]any, error) {
			return ping(NewUniversalClientFromOptions(&redis.UniversalOptions{Addrs: []string{good, good}, Password: matrix.SecretDSN, TLSConfig: skip}, verified(log)...))
		},
	}
}
