package mssqlssl

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/mitm"
	"github.com/sslconn/sslconn/sslconn"
)

// target needs the scenario servers: it skips the test under -short.
func target(t testing.TB) matrix.Target {
	env := scenarios.Get(t)
	certs := env.certs
	return matrix.Target{
		Engine:   mitm.TDS,
		Upstream: env.servers[1].Addr(),
		Certs:    certs,
		Connect: func(ctx context.Context, addr string, mode sslconn.Mode, marker string, opts ...sslconn.Option) error {
			db, err := Open("sqlserver://"+user+":"+password+"@"+addr+"?database=master&ssl-mode="+mode.String()+"&ssl-ca="+certs.CA, opts...)
			if err != nil {
				return err
			}
			defer db.Close()
			var n int
			return db.QueryRowContext(ctx, "SELECT 1 -- "+marker).Scan(&n)
		},
		// SQL batches travel as UTF-16LE.
		Wire: func(marker string) []byte {
			var b []byte
			for _, u := range utf16.Encode([]rune(marker)) {
				b = append(b, byte(u), byte(u>>8))
			}
			return b
		},
	}
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
		db, err := Open("sqlserver://" + user + ":" + password + "@" + addr + "?database=master&ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error {
			var n int
			return db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
		}, db.Close, nil
	})
}

// TestSecrets: no password in errors, logs, printed values or panics, in
// URL, ADO and ODBC DSNs (see matrix.RunSecrets).
func TestSecrets(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.certs, env.servers
	connect := matrix.PingSQL(NewConnector)
	good := servers[1].Addr()
	ado := strings.Replace(good, ":", ",", 1)
	matrix.RunSecrets(t, matrix.SecretsTarget{
		Certs: certs, Good: good, Foreign: servers[4].Addr(), Password: password,
		DSN: func(addr, pw, params string) string {
			return "sqlserver://" + user + ":" + pw + "@" + addr + "?database=master&" + params
		},
		Malformed: func(pw string) string { return "sqlserver://" + user + ":" + pw + "@[127.0.0.1:1?x" },
		Connect:   connect,
		Extra: map[string]matrix.Probe{
			"ADO, bad encrypt": func(log *slog.Logger) ([]any, error) {
				return connect("server="+ado+";user id="+user+";password="+matrix.SecretDSN+";encrypt=sometimes", sslconn.WithLogger(log))
			},
			"ODBC, wrong password": func(log *slog.Logger) ([]any, error) {
				return connect("odbc:server="+ado+";user id="+user+";password={"+matrix.SecretDSN+"};ssl-mode=REQUIRED", sslconn.WithLogger(log))
			},
		},
	})
}
