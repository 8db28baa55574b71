package mssqlssl

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

const (
	user     = "sa"
	password = "Tds-Secret-pw1"
)

// testServers: one TDS test server per scenario S0-S7, with the
// certificates they use. TDS negotiates TLS in-band (PRELOGIN), so every
// mode uses the same port, as with SQL Server.
type testServers struct {
	certs   *testenv.Certs
	servers [8]*tdsserver.Server
}

// Stop stops the servers; testenv.Cleanup calls it.
func (e *testServers) Stop() {
	for _, s := range e.servers {
		if s != nil {
			_ = s.Stop()
		}
	}
}

// scenarios starts on the first test that needs it, once per package.
var scenarios = testenv.NewLazy(func() (*testServers, error) {
	c, err := makeCerts()
	if err != nil {
		return nil, err
	}
	e := &testServers{certs: c}
	for i := range e.servers {
		conf, err := tdsserver.ForScenario(testenv.Scenario(c, i), user, password)
		if err == nil {
			e.servers[i], err = tdsserver.Start(conf)
		}
		if err != nil {
			e.Stop()
			return nil, fmt.Errorf("start TDS server %s: %w", testenv.ScenarioNames[i], err)
		}
	}
	return e, nil
})

// serverCerts are the certificates alone, for the tests that start their
// own TDS server; like scenarios, Get skips under -short.
var serverCerts = testenv.NewLazy(makeCerts)

// certsErr is a testenv.TB that keeps GetCerts's failure as an error.
type certsErr struct{ err error }

func (c *certsErr) Helper() {}

func (c *certsErr) Fatalf(format string, args ...any) { c.err = fmt.Errorf(format, args...) }

func makeCerts() (*testenv.Certs, error) {
	var tb certsErr
	c := testenv.GetCerts(&tb)
	return c, tb.err
}

// serverConfig maps a scenario onto the TDS test server.
func serverConfig(t testenv.TLS) tdsserver.Config {
	c, err := tdsserver.ForScenario(t, user, password)
	if err != nil {
		panic(err)
	}
	return c
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

func urlDSN(s *tdsserver.Server, host, params string) string {
	return fmt.Sprintf("sqlserver://%s:%s@%s:%d?database=master&%s", user, password, host, s.Port(), params)
}

func result(t *testing.T, dsn string, opts ...sslconn.Option) (string, sslconn.Status, error) {
	t.Helper()
	db, err := Open(dsn, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, opts...)...)
	if err != nil {
		return "config error", sslconn.Status{}, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT @@VERSION").Scan(&version); err != nil {
		return matrix.Kind(err), sslconn.Status{}, err
	}
	st, err := Verify(ctx, db)
	if err != nil {
		return matrix.Kind(err), st, err
	}
	if st.Encrypted {
		return matrix.TLSOK, st, nil
	}
	return matrix.Plain, st, nil
}

// TestMatrix: every mode against every scenario, each cell asserted through
// Verify (the server's encrypt_option, the client's version and cipher) or
// the sentinel error.
func TestMatrix(t *testing.T) {
	env := scenarios.Get(t)
	want := matrix.Want()
	for sc, s := range env.servers {
		for _, mode := range core.Modes {
			t.Run(testenv.ScenarioNames[sc]+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				got, st, err := result(t, urlDSN(s, "localhost", "ssl-mode="+mode.String()+"&ssl-ca="+env.certs.CA))
				if got != want[sc][mode] {
					t.Fatalf("got %s (%+v %v), want %s", got, st, err, want[sc][mode])
				}
				if err != nil {
					matrix.CheckErrorText(t, err, mode, "localhost", password)
				} else if st.Encrypted && (!strings.HasPrefix(st.Version, "TLSv1.") || !strings.HasPrefix(st.Cipher, "TLS_")) {
					t.Fatalf("status %+v", st)
				}
			})
		}
	}
}

// TestDSNSyntaxes: the URL, ADO and ODBC forms all carry ssl-* parameters.
// TestAddresses: by IP and by name, in each mode that encrypts (the
// session cache once made go-mssqldb panic for IP literals).
func TestAddresses(t *testing.T) {
	env := scenarios.Get(t)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		for _, mode := range []sslconn.Mode{sslconn.Preferred, sslconn.VerifyIdentity} {
			t.Run(host+"/"+mode.String(), func(t *testing.T) {
				got, st, err := result(t, urlDSN(env.servers[1], host, "ssl-mode="+mode.String()+"&ssl-ca="+env.certs.CA))
				if got != matrix.TLSOK {
					t.Fatalf("%s %v %v", got, st, err)
				}
			})
		}
	}
}

func TestDSNSyntaxes(t *testing.T) {
	env := scenarios.Get(t)
	s, certs := env.servers[1], env.certs
	for name, dsn := range map[string]string{
		"URL":  urlDSN(s, "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA),
		"ADO":  fmt.Sprintf("server=localhost;port=%d;user id=%s;password=%s;ssl-mode=VERIFY_IDENTITY;ssl-ca=%s", s.Port(), user, password, certs.CA),
		"ODBC": fmt.Sprintf("odbc:server=localhost;port=%d;user id=%s;password={%s};ssl-mode=VERIFY_IDENTITY;ssl-ca=%s", s.Port(), user, password, certs.CA),
		// SQL Server's own host,port form, which go-mssqldb's odbc: parser
		// alone does not split.
		"ADO host,port":  fmt.Sprintf("server=tcp:localhost,%d;user id=%s;password=%s;ssl-mode=VERIFY_IDENTITY;ssl-ca=%s", s.Port(), user, password, certs.CA),
		"ODBC host,port": fmt.Sprintf("odbc:server=tcp:localhost,%d;user id=%s;password={%s};ssl-mode=VERIFY_IDENTITY;ssl-ca=%s", s.Port(), user, password, certs.CA),
	} {
		t.Run(name, func(t *testing.T) {
			if got, st, err := result(t, dsn); got != matrix.TLSOK {
				t.Fatalf("%s %+v %v", got, st, err)
			}
		})
	}
}

func TestCAFormats(t *testing.T) {
	env := scenarios.Get(t)
	for name, ca := range matrix.CAFiles(env.certs) {
		t.Run(name, func(t *testing.T) {
			if got, _, err := result(t, urlDSN(env.servers[1], "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+ca)); got != matrix.TLSOK {
				t.Fatalf("%s %v", got, err)
			}
		})
	}
}

// TestModeFromDSN: go-mssqldb's own encrypt, TrustServerCertificate,
// certificate and hostNameInCertificate.
func TestModeFromDSN(t *testing.T) {
	env := scenarios.Get(t)
	certs := env.certs
	tests := []struct {
		name   string
		server int
		params string
		want   string
	}{
		{"nothing: PREFERRED, TLS", 1, "", matrix.TLSOK},
		{"nothing: PREFERRED, plain", 0, "", matrix.Plain},
		{"encrypt=false: PREFERRED, the whole session", 1, "encrypt=false", matrix.TLSOK},
		{"encrypt=disable", 1, "encrypt=disable", matrix.Plain},
		{"encrypt=true verifies", 3, "encrypt=true&certificate=" + certs.ChainPEM, sslconn.ErrHostnameMismatch.Error()},
		{"encrypt=true with TrustServerCertificate", 4, "encrypt=true&TrustServerCertificate=true", matrix.TLSOK},
		{"hostNameInCertificate", 3, "encrypt=true&certificate=" + certs.ChainPEM + "&hostNameInCertificate=other.example.com", matrix.TLSOK},
		{"encrypt=strict (TDS 8)", 1, "encrypt=strict&certificate=" + certs.ChainPEM, matrix.TLSOK},
		{"encrypt=strict verifies", 4, "encrypt=strict&certificate=" + certs.ChainPEM, sslconn.ErrUnknownAuthority.Error()},
		{"strict with REQUIRED", 4, "encrypt=strict&ssl-mode=REQUIRED", matrix.TLSOK},
		{"tlsmin reaches TLS 1.1", 7, "encrypt=true&tlsmin=1.0&certificate=" + certs.ChainPEM, matrix.TLSOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st, err := result(t, urlDSN(env.servers[tt.server], "localhost", tt.params))
			if got != tt.want {
				t.Fatalf("%s (%+v %v), want %s", got, st, err, tt.want)
			}
		})
	}
}

func TestBadDSN(t *testing.T) {
	const pw = "Dsn-Secret-99"
	pinned := certFile(t)
	tests := []struct{ name, dsn, says string }{
		{"unknown mode", "sqlserver://sa:" + pw + "@localhost?ssl-mode=VERIFY", "VERIFY_IDENTITY"},
		{"encrypt=disable with REQUIRED", "sqlserver://sa:" + pw + "@localhost?encrypt=disable&ssl-mode=REQUIRED", "ssl-mode"},
		// encrypt=true with PREFERRED is no contradiction under the one
		// conflict rule (an explicit mode refines the driver's setting):
		// see TestConflictTable.
		{"encrypt=true with DISABLED", "sqlserver://sa:" + pw + "@localhost?encrypt=true&ssl-mode=DISABLED", "ssl-mode"},
		{"bad encrypt", "sqlserver://sa:" + pw + "@localhost?encrypt=maybe", "invalid SQL Server DSN"},
		{"bad tlsmin", "sqlserver://sa:" + pw + "@localhost?tlsmin=2.0", "tlsmin"},
		{"missing CA", "sqlserver://sa:" + pw + "@localhost?ssl-ca=/nonexistent.pem", "ssl-ca"},
		{"serverCertificate pinning", "sqlserver://sa:" + pw + "@localhost?encrypt=true&serverCertificate=" + pinned, "serverCertificate"},
		{"ADO with bad mode", "server=localhost;user id=sa;password=" + pw + ";ssl-mode=sometimes", "ssl-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConnector(tt.dsn)
			matrix.CheckBadInput(t, err, tt.says, pw)
		})
	}
	// A wrong password is the server's error, permanent and without the password.
	t.Run("wrong password", func(t *testing.T) {
		env := scenarios.Get(t)
		_, _, err := result(t, strings.Replace(urlDSN(env.servers[1], "localhost", "ssl-mode=REQUIRED"), password, "Wrong-pw-777", 1))
		if err == nil || !strings.Contains(err.Error(), "Login failed") || strings.Contains(err.Error(), "Wrong-pw-777") || !core.IsPermanent(err) {
			t.Fatalf("wrong password: %v", err)
		}
	})
}

// TestPreferredAfterEnablingSSL: the server is restarted from no TLS to TLS
// forced on the same port; a PREFERRED pool's new connections are encrypted.
func TestPreferredAfterEnablingSSL(t *testing.T) {
	certs := serverCerts.Get(t)
	s, err := tdsserver.Start(serverConfig(testenv.Scenario(certs, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	db, err := Open(urlDSN(s, "localhost", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if st, err := Verify(ctx, db); err != nil || st.Encrypted {
		t.Fatalf("before: %+v %v", st, err)
	}
	if err := s.Restart(serverConfig(testenv.Scenario(certs, 2))); err != nil {
		t.Fatal(err)
	}
	var st sslconn.Status
	for range 3 {
		if st, err = Verify(ctx, db); err == nil {
			break
		}
	}
	if err != nil || !st.Encrypted || st.Version == "" {
		t.Fatalf("after: %+v %v", st, err)
	}
}
