package mysqlssl

import (
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// rttCases: each mode against the TLS server (S1), and PREFERRED against
// the server without TLS (S0); the bare driver with tls=false,
// tls=preferred, or the hand-made config of matrix.BareTLS.
func rttCases(t testing.TB) []matrix.RTTCase {
	env := scenarios.Get(t)
	certs := env.certs
	bare := func(tlsParam string, mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			cfg := mysql.NewConfig()
			cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = testenv.MySQLUser, testenv.MySQLPassword, "tcp", hostPort(port), testenv.MySQLDatabase
			if tlsParam != "" {
				cfg.TLSConfig = tlsParam
			} else {
				cfg.TLS = matrix.BareTLS(tb, certs.CA, mode, host)
			}
			c, err := mysql.NewConnector(cfg)
			if err != nil {
				tb.Fatal(err)
			}
			return &matrix.SQLClient{Connector: c}
		}
	}
	lib := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			c, err := NewConnector(dsn(testenv.MySQLUser, testenv.MySQLPassword, host, port, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA))
			if err != nil {
				tb.Fatal(err)
			}
			return &matrix.SQLClient{Connector: c}
		}
	}
	tlsServer, plain := env.servers[1].Addr(env.servers[1].Port), env.servers[0].Addr(env.servers[0].Port)
	return []matrix.RTTCase{
		{Name: "DISABLED", Target: tlsServer, Bare: bare("false", 0), Lib: lib(sslconn.Disabled)},
		{Name: "PREFERRED", Target: tlsServer, Bare: bare("preferred", 0), Lib: lib(sslconn.Preferred)},
		{Name: "PREFERRED/plaintext-server", Target: plain, Bare: bare("preferred", 0), Lib: lib(sslconn.Preferred)},
		{Name: "REQUIRED", Target: tlsServer, Bare: bare("", sslconn.Required), Lib: lib(sslconn.Required)},
		{Name: "VERIFY_CA", Target: tlsServer, Bare: bare("", sslconn.VerifyCA), Lib: lib(sslconn.VerifyCA)},
		{Name: "VERIFY_IDENTITY", Target: tlsServer, Bare: bare("", sslconn.VerifyIdentity), Lib: lib(sslconn.VerifyIdentity)},
	}
}

// TestRoundTrips: per mode, the library makes no more round trips than
// the bare driver, through a relay with a small delay.
func TestRoundTrips(t *testing.T) { matrix.TestRTT(t, rttCases(t)) }

// BenchmarkRTT: connect time and round trips at 1 ms and 25 ms RTT.
//
//	go test -run '^$' -bench RTT -benchtime 3x ./mysqlssl
func BenchmarkRTT(b *testing.B) { matrix.BenchRTT(b, rttCases(b)) }
