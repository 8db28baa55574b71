package mysqlssl

import (
	"context"
	"log/slog"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// target is the S1 server as the shared attack tests see it; it starts the
// scenario servers, or skips t under -short.
func target(t testing.TB) matrix.Target {
	env := scenarios.Get(t)
	certs := env.certs
	return matrix.Target{
		Engine:   mitm.MySQL,
		Upstream: testenv.Addr(env.servers[1].Port),
		Certs:    certs,
		// The login carries a scramble, never the password: not even
		// after a PREFERRED fallback (no cleartext plugin, no RSA fetch).
		Password: testenv.MySQLPassword,
		Connect: func(ctx context.Context, addr string, mode sslconn.Mode, marker string, opts ...sslconn.Option) error {
			db, err := Open(appDSNAt(addr, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA), opts...)
			if err != nil {
				return err
			}
			defer db.Close()
			var got string
			return db.QueryRowContext(ctx, "SELECT ?", marker).Scan(&got)
		},
	}
}

func appDSNAt(addr, params string) string {
	return testenv.MySQLUser + ":" + testenv.MySQLPassword + "@tcp(" + addr + ")/" + testenv.MySQLDatabase + "?" + params
}

// TestAttacks: a man in the middle against every mode (see matrix.RunAttacks).
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target(t)) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target(t)) }

// TestNoLeaks: concurrent connects and queries, then Close, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	tg := target(t)
	certs := tg.Certs
	matrix.RunNoLeaks(t, tg, 8, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
		db, err := Open(appDSNAt(addr, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA))
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error {
			var n int
			return db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
		}, db.Close, nil
	})
}

// TestSecrets: no password in errors, logs, printed values or panics (see
// matrix.RunSecrets).
func TestSecrets(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.certs, env.servers
	matrix.RunSecrets(t, matrix.SecretsTarget{
		Certs: certs, Good: testenv.Addr(servers[1].Port), Foreign: testenv.Addr(servers[4].Port), Password: testenv.MySQLPassword,
		DSN: func(addr, pw, params string) string {
			return testenv.MySQLUser + ":" + pw + "@tcp(" + addr + ")/" + testenv.MySQLDatabase + "?" + params
		},
		Malformed: func(pw string) string { return testenv.MySQLUser + ":" + pw + "@tcp(127.0.0.1:1/db?x" },
		Connect:   matrix.PingSQL(NewConnector),
		Extra: map[string]matrix.Probe{
			// A config built in code, its password set by a BeforeConnect
			// hook (the IAM pattern): wrong, then right.
			"FromConfig, hook sets a wrong password": fromConfigProbe(servers[1], matrix.SecretDSN),
			"FromConfig, hook sets the password":     fromConfigProbe(servers[1], testenv.MySQLPassword),
		},
	})
}

// fromConfigProbe connects through NewConnectorFromConfig with a
// BeforeConnect hook that sets pw, and returns what it built.
func fromConfigProbe(s *testenv.Server, pw string) matrix.Probe {
	return func(log *slog.Logger) ([]any, error) {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Net, cfg.Addr, cfg.DBName = testenv.MySQLUser, "tcp", testenv.Addr(s.Port), testenv.MySQLDatabase
		if err := cfg.Apply(mysql.BeforeConnect(func(_ context.Context, c *mysql.Config) error {
			c.Passwd = pw
			return nil
		})); err != nil {
			return nil, err
		}
		return matrix.PingSQL(func(string, ...sslconn.Option) (*Connector, error) {
			return NewConnectorFromConfig(cfg, sslconn.WithLogger(log), sslconn.WithRetryBudget(-1))
		})("")
	}
}
