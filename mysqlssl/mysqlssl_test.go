package mysqlssl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// scenarioServers are one MariaDB per scenario S0-S7 of the contract and
// the certificates they use.
type scenarioServers struct {
	certs   *testenv.Certs
	servers [8]*testenv.Server
}

var (
	// scenarios starts the eight servers on the first test that needs them,
	// once for the package; testenv.Cleanup stops them.
	scenarios = testenv.NewLazy(func() (*scenarioServers, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		s, err := matrix.StartScenarios(c, testenv.StartMariaDB)
		if err != nil {
			return nil, fmt.Errorf("start MariaDB: %w", err)
		}
		return &scenarioServers{certs: c, servers: s}, nil
	})
	// certsForServers are the certificates alone, for the tests that start
	// their own server (restarts); Get skips them under -short too.
	certsForServers = testenv.NewLazy(makeCerts)
)

// certsErr is a testenv.TB that keeps the failure instead of panicking.
type certsErr struct{ err error }

func (*certsErr) Helper() {}

func (c *certsErr) Fatalf(format string, args ...any) { c.err = fmt.Errorf(format, args...) }

func makeCerts() (*testenv.Certs, error) {
	var r certsErr
	c := testenv.GetCerts(&r)
	return c, r.err
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

func dsn(user, pass, host string, port int, params string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", user, pass, net.JoinHostPort(host, strconv.Itoa(port)), testenv.MySQLDatabase, params)
}

func appDSN(s *testenv.Server, host, params string) string {
	return dsn(testenv.MySQLUser, testenv.MySQLPassword, host, s.Port, params)
}

// result connects and reports "plain", "TLS" or the sentinel that matched,
// from the server's own Ssl_version.
func result(t *testing.T, d string, opts ...sslconn.Option) (string, sslconn.Status, error) {
	t.Helper()
	db, err := Open(d, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, opts...)...)
	if err != nil {
		return "config error", sslconn.Status{}, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := Verify(ctx, db)
	if err != nil {
		return matrix.Kind(err), st, err
	}
	if st.Encrypted {
		return "TLS", st, nil
	}
	return "plain", st, nil
}

// TestMatrix is the contract's table: every mode against every scenario,
// each cell asserted through Verify (the server's Ssl_version) or through
// the sentinel error, whose message names mode, host and option and holds
// no password.
func TestMatrix(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	want := matrix.Want()
	for sc, s := range servers {
		for _, mode := range core.Modes {
			t.Run(testenv.ScenarioNames[sc]+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				d := appDSN(s, "localhost", "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA)
				got, st, err := result(t, d)
				if got != want[sc][mode] {
					t.Fatalf("got %s (%v %v), want %s", got, st, err, want[sc][mode])
				}
				if err != nil {
					matrix.CheckErrorText(t, err, mode, "localhost", testenv.MySQLPassword)
				} else if st.Encrypted && (!strings.HasPrefix(st.Version, "TLSv1.") || !strings.HasPrefix(st.Cipher, "TLS_")) {
					t.Fatalf("status %+v", st)
				}
			})
		}
	}
}

// TestAddresses: IPv4, IPv6 and localhost all verify (the SAN carries all three).
func TestAddresses(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			got, st, err := result(t, appDSN(servers[1], host, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA))
			if got != "TLS" {
				t.Fatalf("%s %v %v", got, st, err)
			}
		})
	}
}

// TestCAFormats: the CA as the console hands it out, in every format.
func TestCAFormats(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	for name, ca := range matrix.CAFiles(certs) {
		t.Run(name, func(t *testing.T) {
			got, _, err := result(t, appDSN(servers[1], "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+ca))
			if got != "TLS" {
				t.Fatalf("%s %v", got, err)
			}
		})
	}
	t.Run("Connector/J parameters", func(t *testing.T) {
		got, _, err := result(t, appDSN(servers[1], "localhost",
			"sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:"+certs.JKS+"&trustCertificateKeyStorePassword=apsaradb"))
		if got != "TLS" {
			t.Fatalf("%s %v", got, err)
		}
	})
	t.Run("wrong JKS password", func(t *testing.T) {
		_, err := Open(appDSN(servers[1], "localhost", "ssl-ca="+certs.JKS+"&ssl-ca-password=Not-The-Password"))
		if !errors.Is(err, sslconn.ErrBadCA) || strings.Contains(err.Error(), "Not-The-Password") || !strings.Contains(err.Error(), "ssl-ca-password") {
			t.Fatalf("%v", err)
		}
	})
}

// TestServerNameOverride: an endpoint reached by IP whose certificate names
// another host verifies with ssl-server-name.
func TestServerNameOverride(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	got, _, err := result(t, appDSN(servers[3], "127.0.0.1", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA+"&ssl-server-name=other.example.com"))
	if got != "TLS" {
		t.Fatalf("%s %v", got, err)
	}
}

// TestCAAloneMeansVerifyCA and the driver's own tls= values.
func TestModeFromDSN(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	tests := []struct {
		name, params string
		server       int
		want         string
	}{
		{"neither: PREFERRED, TLS", "", 1, "TLS"},
		{"neither: PREFERRED, plain", "", 0, "plain"},
		{"CA alone: VERIFY_CA accepts another host", "ssl-ca=" + certs.CA, 3, "TLS"},
		{"CA alone: VERIFY_CA rejects another CA", "ssl-ca=" + certs.CA, 4, sslconn.ErrUnknownAuthority.Error()},
		{"tls=false", "tls=false", 1, "plain"},
		{"tls=preferred", "tls=preferred", 0, "plain"},
		{"tls=skip-verify", "tls=skip-verify", 4, "TLS"},
		{"tls=true with CA", "tls=true&ssl-ca=" + certs.CA, 3, sslconn.ErrHostnameMismatch.Error()},
		{"tls=true agrees with ssl-mode", "tls=true&ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA, 1, "TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := result(t, appDSN(servers[tt.server], "localhost", tt.params))
			if got != tt.want {
				t.Fatalf("%s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

// TestBadDSN: clear, typed errors that never contain the password.
func TestBadDSN(t *testing.T) {
	const pw = "Pa55-w0rd-in-DSN"
	tests := []struct {
		name, dsn, says string
	}{
		{"unknown mode", "u:" + pw + "@tcp(localhost:3306)/db?ssl-mode=VERIFY", "VERIFY_IDENTITY"},
		// tls=true&ssl-mode=REQUIRED was here: under the one conflict rule an
		// explicit mode refines tls= (TestConflictTable), so only a
		// contradiction is an error.
		{"conflicting tls and ssl-mode", "u:" + pw + "@tcp(localhost:3306)/db?tls=skip-verify&ssl-mode=VERIFY_CA", "ssl-mode"},
		{"tls=true and ssl-mode=DISABLED", "u:" + pw + "@tcp(localhost:3306)/db?tls=true&ssl-mode=DISABLED", "ssl-mode"},
		{"unregistered tls config", "u:" + pw + "@tcp(localhost:3306)/db?tls=custom", "RegisterTLSConfig"},
		{"unterminated address", "u:" + pw + "@tcp(localhost:3306/db", "invalid DSN"},
		{"no slash", "u:" + pw + "@tcp(localhost:3306)", "invalid DSN"},
		{"bad tls-version", "u:" + pw + "@tcp(localhost:3306)/db?tls-version=SSLv3", "tls-version"},
		{"missing CA file", "u:" + pw + "@tcp(localhost:3306)/db?ssl-ca=/nonexistent/ca.pem", "ssl-ca"},
		{"bad driver parameter", "u:" + pw + "@tcp(localhost:3306)/db?parseTime=maybe", "invalid DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConnector(tt.dsn)
			matrix.CheckBadInput(t, err, tt.says, pw)
		})
	}
}

// TestRequiresTLSVersusBadPassword: MariaDB answers 1045 both for a plaintext
// login to an account created REQUIRE SSL and for a wrong password.
func TestRequiresTLSVersusBadPassword(t *testing.T) {
	servers := scenarios.Get(t).servers
	d := dsn(testenv.MySQLSSLUser, testenv.MySQLSSLPassword, "localhost", servers[1].Port, "ssl-mode=DISABLED")
	got, _, err := result(t, d)
	if got != sslconn.ErrServerRequiresTLS.Error() {
		t.Fatalf("REQUIRE SSL account under DISABLED: %s %v", got, err)
	}
	matrix.CheckErrorText(t, err, sslconn.Disabled, "localhost", testenv.MySQLSSLPassword)
	d = dsn(testenv.MySQLSSLUser, "Wrong-pw-123", "localhost", servers[1].Port, "ssl-mode=DISABLED")
	_, _, err = result(t, d)
	if err == nil || errors.Is(err, sslconn.ErrServerRequiresTLS) || !strings.Contains(err.Error(), "1045") || strings.Contains(err.Error(), "Wrong-pw-123") {
		t.Fatalf("wrong password: %v", err)
	}
	if !core.IsPermanent(err) {
		t.Fatalf("a wrong password must not be retried: %v", err)
	}
	got, _, err = result(t, dsn(testenv.MySQLSSLUser, testenv.MySQLSSLPassword, "localhost", servers[1].Port, "ssl-mode=REQUIRED"))
	if got != "TLS" {
		t.Fatalf("REQUIRE SSL account under REQUIRED: %s %v", got, err)
	}
}

// TestMutualTLS: an account created REQUIRE X509 logs in with ssl-cert/ssl-key.
func TestMutualTLS(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	base := "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA
	d := dsn(testenv.MySQLX509User, testenv.MySQLX509Password, "localhost", servers[1].Port, base+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.Client.Key)
	if got, _, err := result(t, d); got != "TLS" {
		t.Fatalf("with client certificate: %s %v", got, err)
	}
	d = dsn(testenv.MySQLX509User, testenv.MySQLX509Password, "localhost", servers[1].Port, base)
	if got, _, err := result(t, d); got == "TLS" || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("without client certificate: %s %v", got, err)
	}
}

// TestLegacyTLS: a TLS 1.0/1.1-only instance is reachable with tls-version,
// and the server says which version it negotiated.
func TestLegacyTLS(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	got, st, err := result(t, appDSN(servers[7], "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA+"&tls-version=TLSv1,TLSv1.1,TLSv1.2"))
	if got != "TLS" || st.Version != "TLSv1.1" {
		t.Fatalf("%s %+v %v", got, st, err)
	}
	_, _, err = result(t, appDSN(servers[7], "localhost", "ssl-mode=REQUIRED"))
	if !errors.Is(err, sslconn.ErrTLSVersion) || !strings.Contains(err.Error(), "tls-version") {
		t.Fatalf("default versions: %v", err)
	}
}

// TestRegisteredDriver: sql.Open("mysqlssl", dsn) works like Open.
func TestRegisteredDriver(t *testing.T) {
	tb := scenarios.Get(t)
	certs, servers := tb.certs, tb.servers
	db, err := sql.Open(DriverName, appDSN(servers[1], "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := Verify(context.Background(), db)
	if err != nil || !st.Encrypted {
		t.Fatalf("%+v %v", st, err)
	}
}

// TestPreferredPerConnection: the driver's own tls=preferred turns the whole
// pool plaintext after one fallback. Here, after the instance is restarted
// from TLS off to TLS on (the console's "enable SSL"), new connections of the
// same pool are encrypted, and the restart itself is ridden out.
func TestPreferredPerConnection(t *testing.T) {
	certs := certsForServers.Get(t)
	s, err := testenv.StartMariaDB(testenv.Scenario(certs, 0))
	if err != nil {
		t.Fatal(err)
	}
	var retries int
	var mu sync.Mutex
	db, err := Open(appDSN(s, "localhost", ""), sslconn.WithRetryCallback(func(sslconn.RetryEvent) { mu.Lock(); retries++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if st, err := Verify(ctx, db); err != nil || st.Encrypted {
		t.Fatalf("before: %+v %v", st, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		s.TLS = testenv.Scenario(certs, 1)
		started <- s.Start()
	}()
	// The restart's error is reported by the test's own goroutine, which
	// waits for it before returning (after a Fatalf too): no t.Error from
	// a goroutine that may outlive the test.
	defer func() {
		if err := <-started; err != nil {
			t.Errorf("restarting the server with TLS: %v", err)
		}
	}()
	// The pooled connection died with the server; liveness checks drop it,
	// and the new connection waits for the restart.
	for i := range 3 {
		st, err := Verify(ctx, db)
		if err != nil || !st.Encrypted {
			t.Fatalf("after restart, connection %d: %+v %v", i, st, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if retries == 0 {
		t.Fatalf("no retry was reported while the server was down")
	}
}

// TestRetryBudget: a server that stays down fails after the budget, with
// the cause; a context deadline ends retrying sooner.
func TestRetryBudget(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(dsn("u", "p", "127.0.0.1", port, ""), sslconn.WithRetryBudget(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	err = db.PingContext(context.Background())
	// The text used to say "retry budget"; since the refactor an address
	// that never answered is reported as such, and the error names the
	// option instead (core.Config.Retry).
	if !errors.Is(err, sslconn.ErrUnavailable) || !strings.Contains(err.Error(), "WithRetryBudget") || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	db2, _ := Open(dsn("u", "p", "127.0.0.1", port, ""))
	defer db2.Close()
	start = time.Now()
	if err := db2.PingContext(ctx); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("deadline: %v after %v", err, time.Since(start))
	}
}
