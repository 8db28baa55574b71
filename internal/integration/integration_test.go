// Package integration proves that the adapters compose with the libraries
// services put on top of a driver: ORMs and query builders (GORM, sqlx, bun,
// ent) and OpenTelemetry tracing (otelsql, redisotel, a MongoDB command
// monitor). It is a module of its own so that none of these libraries
// enters the library's go.mod. Every test connects in VERIFY_IDENTITY to a
// real server started through internal/testenv (or the in-process TDS test
// server), runs its queries through the library under test, and asserts
// that the connection is encrypted. telemetry_test.go checks the library's
// own OpenTelemetry metrics and spans with the SDK's in-memory reader and
// recorder, also over PREFERRED to servers without TLS and across a
// restart. go test -short runs none of them.
package integration

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The servers: one of each, in scenario S1 of the contract (TLS offered,
// not forced, certificate from the test CA with SAN localhost), so that the
// encryption the tests assert is the library's doing, not the server's.
// Each starts on the first test that needs it; testenv.Cleanup stops it.
var (
	certs   = testenv.NewLazy(makeCerts)
	mariadb = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartMariaDB(testenv.Scenario(c, 1))
	})
	redisServer = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartRedis(testenv.Scenario(c, 1))
	})
	ferretdb = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartFerretDB(testenv.Scenario(c, 1))
	})
	// tds is the in-process TDS test server (no SQL Server runs here). It
	// answers SQL batches only (SELECT 1, SELECT @@VERSION, the
	// sys.dm_exec_connections query, INSERT INTO writes / SELECT id FROM
	// writes), not RPC calls, so no query with parameters reaches it.
	tds = testenv.NewLazy(func() (*tdsserver.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		conf, err := tdsserver.ForScenario(testenv.Scenario(c, 1), tdsUser, tdsPassword)
		if err != nil {
			return nil, err
		}
		return tdsserver.Start(conf)
	})
)

const (
	tdsUser     = "sa"
	tdsPassword = "Tds-Secret-pw1"
)

// errTB is a testenv.TB that keeps the failure as an error, for a Lazy's start.
type errTB struct{ err error }

func (*errTB) Helper() {}

func (e *errTB) Fatalf(format string, args ...any) { e.err = fmt.Errorf(format, args...) }

func makeCerts() (*testenv.Certs, error) {
	var tb errTB
	c := testenv.GetCerts(&tb)
	return c, tb.err
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	redis.SetLogger(quietRedis{})
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// testCtx is a test's context, bounded so that a hang fails instead of
// waiting for go test's timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func hostPort(port int) string { return net.JoinHostPort("localhost", strconv.Itoa(port)) }

// mysqlDSN is the MariaDB DSN in VERIFY_IDENTITY against the test CA.
func mysqlDSN(t *testing.T) string {
	t.Helper()
	c, s := certs.Get(t), mariadb.Get(t)
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?parseTime=true&ssl-mode=VERIFY_IDENTITY&ssl-ca=%s",
		testenv.MySQLUser, testenv.MySQLPassword, hostPort(s.Port), testenv.MySQLDatabase, c.CA)
}

// mssqlDSN is the TDS test server's DSN in VERIFY_IDENTITY against the test CA.
func mssqlDSN(t *testing.T) string {
	t.Helper()
	c, s := certs.Get(t), tds.Get(t)
	return fmt.Sprintf("sqlserver://%s:%s@%s?database=master&ssl-mode=VERIFY_IDENTITY&ssl-ca=%s",
		tdsUser, tdsPassword, hostPort(s.Port()), c.CA)
}

// mongoURI is FerretDB's TLS port's URI in VERIFY_IDENTITY.
func mongoURI(t *testing.T) string {
	t.Helper()
	c, s := certs.Get(t), ferretdb.Get(t)
	return fmt.Sprintf("mongodb://%s/?ssl-mode=VERIFY_IDENTITY&ssl-ca=%s", hostPort(s.TLSPort), c.CA)
}

// checkEncrypted fails the test unless st is a verified TLS session.
func checkEncrypted(t *testing.T, st sslconn.Status, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !st.Encrypted || st.Version == "" {
		t.Fatalf("connection not encrypted: %+v", st)
	}
}
