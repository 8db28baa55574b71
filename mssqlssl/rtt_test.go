package mssqlssl

import (
	"fmt"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// rttCases: each mode against the TLS server (S1), and PREFERRED against
// the server that answers ENCRYPT_NOT_SUP (S0); bare go-mssqldb with
// encrypt=disable, or encrypt=true and the hand-made config of
// matrix.BareTLS (InsecureSkipVerify for PREFERRED).
func rttCases(t testing.TB) []matrix.RTTCase {
	env := scenarios.Get(t)
	certs := env.certs
	dsn := func(host string, port int, params string) string {
		return fmt.Sprintf("sqlserver://%s:%s@%s:%d?database=master&%s", user, password, host, port, params)
	}
	bare := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			params := "encrypt=true"
			if mode == sslconn.Disabled {
				params = "encrypt=disable"
			}
			cfg, err := msdsn.Parse(dsn(host, port, params))
			if err != nil {
				tb.Fatal(err)
			}
			switch mode {
			case sslconn.Disabled:
			case sslconn.Preferred:
				cfg.TLSConfig = matrix.BareTLS(tb, certs.CA, sslconn.Required, host)
			default:
				cfg.TLSConfig = matrix.BareTLS(tb, certs.CA, mode, host)
			}
			return &matrix.SQLClient{Connector: mssql.NewConnectorConfig(cfg)}
		}
	}
	lib := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			c, err := NewConnector(dsn(host, port, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA))
			if err != nil {
				tb.Fatal(err)
			}
			return &matrix.SQLClient{Connector: c}
		}
	}
	tlsServer, plain := env.servers[1].Addr(), env.servers[0].Addr()
	return []matrix.RTTCase{
		{Name: "DISABLED", Target: tlsServer, Bare: bare(sslconn.Disabled), Lib: lib(sslconn.Disabled)},
		{Name: "PREFERRED", Target: tlsServer, Bare: bare(sslconn.Preferred), Lib: lib(sslconn.Preferred)},
		{Name: "PREFERRED/plaintext-server", Target: plain, Bare: bare(sslconn.Disabled), Lib: lib(sslconn.Preferred), FirstExtra: 2},
		{Name: "REQUIRED", Target: tlsServer, Bare: bare(sslconn.Required), Lib: lib(sslconn.Required)},
		{Name: "VERIFY_CA", Target: tlsServer, Bare: bare(sslconn.VerifyCA), Lib: lib(sslconn.VerifyCA)},
		{Name: "VERIFY_IDENTITY", Target: tlsServer, Bare: bare(sslconn.VerifyIdentity), Lib: lib(sslconn.VerifyIdentity)},
	}
}

// TestRoundTrips: per mode, the library makes no more round trips than
// bare go-mssqldb, through a relay with a small delay.
func TestRoundTrips(t *testing.T) { matrix.TestRTT(t, rttCases(t)) }

// BenchmarkRTT: connect time and round trips at 1 ms and 25 ms RTT.
//
//	go test -run '^$' -bench RTT -benchtime 3x ./mssqlssl
func BenchmarkRTT(b *testing.B) { matrix.BenchRTT(b, rttCases(b)) }
