package mysqlssl

import (
	"context"
	"database/sql"
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
		Engine:   mitm.MySQL,
		Upstream: testenv.Addr(servers[1].Port),
		Certs:    certs,
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
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target()) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target()) }

// TestNoLeaks: concurrent connects and queries, then Close, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	matrix.RunNoLeaks(t, target(), 8, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
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

// TestSecrets: the DSN password, a wrong DSN password, the JKS password and
// the client key's password never show in errors, logs, printed values or
// panics, whatever fails.
func TestSecrets(t *testing.T) {
	const (
		dsnPW = "Dsn-Secret-7781"
		jksPW = "Jks-Secret-7782"
		keyPW = "Key-Wrong-7783"
	)
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s1, s4 := testenv.Addr(servers[1].Port), testenv.Addr(servers[4].Port)
	at := func(addr, pw, params string) string {
		return testenv.MySQLUser + ":" + pw + "@tcp(" + addr + ")/" + testenv.MySQLDatabase + "?" + params
	}
	connect := func(dsn string, opts ...sslconn.Option) ([]any, error) {
		c, err := NewConnector(dsn, opts...)
		if err != nil {
			return nil, err
		}
		db := sql.OpenDB(c)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return []any{c, c.(*Connector).Config()}, db.PingContext(ctx)
	}
	probes := map[string]matrix.Probe{
		"unknown mode": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, dsnPW, "ssl-mode=BOGUS"), sslconn.WithLogger(log))
		},
		"malformed DSN": func(log *slog.Logger) ([]any, error) {
			return connect(testenv.MySQLUser+":"+dsnPW+"@tcp("+s1+"/db?x", sslconn.WithLogger(log))
		},
		"wrong JKS password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, dsnPW, "ssl-ca="+certs.JKS+"&ssl-ca-password="+jksPW), sslconn.WithLogger(log))
		},
		"wrong key password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, dsnPW, "ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyPKCS8+"&ssl-key-password="+keyPW), sslconn.WithLogger(log))
		},
		"wrong DSN password, encrypted key": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, dsnPW, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.JKS+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyLegacy+"&ssl-key-password="+testenv.KeyPassword), sslconn.WithLogger(log))
		},
		"foreign certificate": func(log *slog.Logger) ([]any, error) {
			return connect(at(s4, testenv.MySQLPassword, "ssl-mode=VERIFY_CA&ssl-ca="+certs.CA), sslconn.WithLogger(log))
		},
		"retries until the budget": func(log *slog.Logger) ([]any, error) {
			return connect(at(testenv.Addr(closed), testenv.MySQLPassword, "ssl-mode=REQUIRED"), sslconn.WithLogger(log), sslconn.WithRetryBudget(400*time.Millisecond))
		},
		"connected": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, testenv.MySQLPassword, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA), sslconn.WithLogger(log))
		},
	}
	matrix.ScanSecrets(t, []string{dsnPW, jksPW, keyPW, testenv.KeyPassword, testenv.MySQLPassword}, probes)
}
