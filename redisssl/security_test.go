package redisssl

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/mitm"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func target() matrix.Target {
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
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target()) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target()) }

// TestNoLeaks: concurrent clients and commands, then Close, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	matrix.RunNoLeaks(t, target(), 8, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
		c, err := NewClient("redis://:" + testenv.RedisPassword + "@" + addr + "/0?ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error { return c.Ping(ctx).Err() }, c.Close, nil
	})
}

// TestSecrets: the URL password, the JKS password and the client key's
// password never show in errors, logs, printed values or panics.
func TestSecrets(t *testing.T) {
	const (
		urlPW = "Url-Secret-7781"
		jksPW = "Jks-Secret-7782"
		keyPW = "Key-Wrong-7783"
	)
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s1, s4 := testenv.Addr(servers[1].TLSPort), testenv.Addr(servers[4].TLSPort)
	at := func(addr, pw, params string) string { return "redis://:" + pw + "@" + addr + "/0?" + params }
	connect := func(u string, opts ...sslconn.Option) ([]any, error) {
		c, err := NewClient(u, opts...)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// c.Options() is go-redis's own struct, password included: not ours to print.
		return []any{c}, c.Ping(ctx).Err()
	}
	probes := map[string]matrix.Probe{
		"unknown mode": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, urlPW, "ssl-mode=BOGUS"), sslconn.WithLogger(log))
		},
		"malformed URL": func(log *slog.Logger) ([]any, error) {
			return connect("redis://:"+urlPW+"@["+s1+"/0", sslconn.WithLogger(log))
		},
		"wrong JKS password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, urlPW, "ssl-ca="+certs.JKS+"&ssl-ca-password="+jksPW), sslconn.WithLogger(log))
		},
		"wrong key password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, urlPW, "ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyPKCS8+"&ssl-key-password="+keyPW), sslconn.WithLogger(log))
		},
		"wrong URL password, encrypted key": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, urlPW, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.JKS+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyLegacy+"&ssl-key-password="+testenv.KeyPassword), sslconn.WithLogger(log))
		},
		"foreign certificate": func(log *slog.Logger) ([]any, error) {
			return connect(at(s4, testenv.RedisPassword, "ssl-mode=VERIFY_CA&ssl-ca="+certs.CA), sslconn.WithLogger(log))
		},
		"retries until the budget": func(log *slog.Logger) ([]any, error) {
			return connect(at(testenv.Addr(closed), testenv.RedisPassword, "ssl-mode=REQUIRED"), sslconn.WithLogger(log), sslconn.WithRetryBudget(400*time.Millisecond))
		},
		"connected": func(log *slog.Logger) ([]any, error) {
			_, err := connect(at(s1, testenv.RedisPassword, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA), sslconn.WithLogger(log))
			return []any{"connected"}, err
		},
	}
	matrix.ScanSecrets(t, []string{urlPW, jksPW, keyPW, testenv.KeyPassword, testenv.RedisPassword}, probes)
}
