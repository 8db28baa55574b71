package mssqlssl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
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
		// SQL batches travel as UTF-16LE; LOGIN7 carries the password
		// obfuscated, readably.
		Wire:                    tdsserver.UCS2,
		Password:                password,
		WirePassword:            tdsserver.LoginPassword,
		PlainLoginShowsPassword: true,
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
			"FromConfig, wrong password": fromConfig(good, matrix.SecretDSN, msdsn.EncryptionRequired, certs.CA),
			"FromConfig, connected":      fromConfig(good, password, msdsn.EncryptionRequired, certs.CA),
			"FromConfig, foreign certificate": fromConfig(servers[4].Addr(), password, msdsn.EncryptionOff, certs.CA,
				sslconn.WithMode(sslconn.VerifyCA)),
			"FromConfig, conflict": fromConfig(good, matrix.SecretDSN, msdsn.EncryptionDisabled, "", sslconn.WithMode(sslconn.Required)),
			"FromConfig, parsed, wrong password": func(log *slog.Logger) ([]any, error) {
				cfg, err := msdsn.Parse("sqlserver://" + user + ":" + matrix.SecretDSN + "@" + good + "?database=master&encrypt=true&TrustServerCertificate=true")
				if err != nil {
					return nil, err
				}
				return pingConnector(NewConnectorFromConfig(cfg, sslconn.WithLogger(log)))
			},
		},
	})
}

// fromConfig is a secrets probe through NewConnectorFromConfig: a config
// built in code for addr, its CA (if any) in a *tls.Config.
func fromConfig(addr, pw string, enc msdsn.Encryption, ca string, opts ...sslconn.Option) matrix.Probe {
	return func(log *slog.Logger) ([]any, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.ParseUint(port, 10, 16)
		cfg := msdsn.Config{Host: host, Port: p, User: user, Password: pw, Database: "master", Encryption: enc}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "localhost"}
		}
		return pingConnector(NewConnectorFromConfig(cfg, append([]sslconn.Option{sslconn.WithLogger(log)}, opts...)...))
	}
}

// pingConnector opens a pool on c, pings once and closes it, returning
// what it built, to be printed.
func pingConnector(c *Connector, err error) ([]any, error) {
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return []any{c, c.Config()}, db.PingContext(ctx)
}

// driverLog sends go-mssqldb's own log (every category the DSN's log=
// asks for) to log, until the returned function is called.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Log(ctx context.Context, category msdsn.Log, msg string) {
	d.log.Debug("go-mssqldb", "category", uint64(category), "msg", msg)
}

// TestSecretsTokens: no access token, nor the DSN's password, in errors,
// logs (ours and go-mssqldb's debug log), printed values or panics, through
// NewAccessTokenConnector: connected, refused, a provider that fails and
// echoes the token, exhausted retries, a bad DSN.
func TestSecretsTokens(t *testing.T) {
	const (
		tokenGood  = "Entra-Good-Token-9901"
		tokenWrong = "Entra-Wrong-Token-9902"
	)
	s, certs := tokenServer(t, tokenGood)
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	returns := func(tok string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return tok, nil }
	}
	verified := "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA + "&log=255"
	probe := func(dsn string, token func(context.Context) (string, error), opts ...sslconn.Option) matrix.Probe {
		return func(log *slog.Logger) ([]any, error) {
			mssql.SetContextLogger(driverLog{log})
			defer mssql.SetContextLogger(nil)
			return pingConnector(NewAccessTokenConnector(dsn, token, append([]sslconn.Option{sslconn.WithLogger(log)}, opts...)...))
		}
	}
	matrix.ScanSecrets(t, []string{tokenGood, tokenWrong, matrix.SecretDSN}, map[string]matrix.Probe{
		"connected":             probe(urlDSN(s, "localhost", verified), returns(tokenGood)),
		"password in the DSN":   probe(strings.Replace(urlDSN(s, "localhost", verified), password, matrix.SecretDSN, 1), returns(tokenGood)),
		"refused by the server": probe(urlDSN(s, "localhost", verified), returns(tokenWrong)),
		"provider fails, echoing the token": func(log *slog.Logger) ([]any, error) {
			calls := 0
			token := func(context.Context) (string, error) {
				if calls++; calls == 1 {
					return tokenWrong, nil
				}
				return "", errors.New("cannot refresh " + tokenWrong)
			}
			c, err := NewAccessTokenConnector(urlDSN(s, "localhost", verified), token, sslconn.WithLogger(log))
			if err != nil {
				return nil, err
			}
			_, _ = pingConnector(c, nil) // refused: the first token
			return pingConnector(c, nil)
		},
		"retries until the budget": probe("sqlserver://"+user+":"+matrix.SecretDSN+"@"+testenv.Addr(closed)+"?ssl-mode=REQUIRED",
			returns(tokenGood), sslconn.WithRetryBudget(400*time.Millisecond)),
		"malformed DSN":  probe("sqlserver://"+user+":"+matrix.SecretDSN+"@[127.0.0.1:1?x", returns(tokenGood)),
		"conflict":       probe("sqlserver://"+user+":"+matrix.SecretDSN+"@localhost?encrypt=disable&ssl-mode=REQUIRED", returns(tokenGood)),
		"nil provider":   probe("sqlserver://"+user+":"+matrix.SecretDSN+"@localhost", nil),
		"empty token":    probe(urlDSN(s, "localhost", verified), returns("")),
		"wrong CA (TLS)": probe(urlDSN(s, "localhost", "ssl-mode=VERIFY_CA&ssl-ca="+certFile(t)), returns(tokenGood)),
	})
}

// TestLoginOnlyUpgraded: the driver's encrypt=false encrypts only LOGIN7,
// and its queries then cross in plaintext; here it means PREFERRED, which
// encrypts the whole session. Through a passive relay that records every
// byte the client sends, neither the query after the login nor the
// password crosses in plaintext. (mitm's TestRelayRecordsWire shows the
// same relay seeing the bare driver's queries after a login-only TLS.)
func TestLoginOnlyUpgraded(t *testing.T) {
	tg := target(t)
	p, err := mitm.Start(mitm.Config{Engine: mitm.TDS, Attack: mitm.Relay, Upstream: tg.Upstream})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	marker := "marker-login-only"
	db, err := Open("sqlserver://" + user + ":" + password + "@" + p.Addr() + "?database=master&encrypt=false")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT 1 -- "+marker).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ex := matrix.Exposure(t, p, tg.Wire(marker), tg.WirePassword(password))
	if ex.MarkerOnWire || ex.PasswordOnWire {
		t.Errorf("encrypt=false: in plaintext on the wire: query %t, password %t", ex.MarkerOnWire, ex.PasswordOnWire)
	}
	if len(p.Wire()) == 0 {
		t.Fatal("the relay recorded nothing: not in the path")
	}
}

// TestVerifyOwnSession: Verify reports the TLS state of its own session
// while others are connected. The TDS test server answers
// sys.dm_exec_connections without a WHERE clause as SQL Server answers a
// login with VIEW SERVER STATE, a row per session, the older plaintext
// session first: a Verify that asked without session_id = @@SPID would
// report that session's state, not its own.
func TestVerifyOwnSession(t *testing.T) {
	certs := serverCerts.Get(t)
	s, err := tdsserver.Start(serverConfig(testenv.Scenario(certs, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hold := func(mode sslconn.Mode) *sql.Conn {
		db, err := Open(urlDSN(s, "localhost", "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	plain := hold(sslconn.Disabled)
	enc := hold(sslconn.VerifyIdentity)
	later := hold(sslconn.Disabled)
	for _, c := range []struct {
		conn *sql.Conn
		want bool
	}{{enc, true}, {plain, false}, {later, false}} {
		st, err := VerifyConn(ctx, c.conn)
		if err != nil {
			t.Fatal(err)
		}
		matrix.CheckStatus(t, "VerifyConn", st, c.want)
	}
}
