package mongossl

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// rttClient is a mongo-driver client; each Connect is a ping on a new pool
// connection (a pooled connection idle for a nanosecond is replaced). The
// client's monitor connection counts with the first.
type rttClient struct{ *mongo.Client }

func (c rttClient) Connect(ctx context.Context) error { return c.Ping(ctx, nil) }

func (c rttClient) Close() error { return c.Disconnect(context.Background()) }

// rttCases: each mode against the TLS server (S1: its plaintext port for
// DISABLED, its TLS port otherwise), and PREFERRED against the server
// without TLS (S0); bare mongo-driver without TLS, or with the hand-made
// config of matrix.BareTLS (InsecureSkipVerify for PREFERRED).
func rttCases(t testing.TB) []matrix.RTTCase {
	env := scenarios.Get(t)
	certs := env.Certs
	co := func(host string, port int) *options.ClientOptions {
		return options.Client().ApplyURI("mongodb://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/").SetMaxConnIdleTime(time.Nanosecond)
	}
	bare := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			o := co(host, port)
			switch mode {
			case sslconn.Disabled:
			case sslconn.Preferred:
				o.SetTLSConfig(matrix.BareTLS(tb, certs.CA, sslconn.Required, host))
			default:
				o.SetTLSConfig(matrix.BareTLS(tb, certs.CA, mode, host))
			}
			c, err := mongo.Connect(o) //v1:replace mongo.Connect(o) => mongo.Connect(context.Background(), o)
			if err != nil {
				tb.Fatal(err)
			}
			return rttClient{c}
		}
	}
	plainBare := bare(sslconn.Disabled)
	lib := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			c, err := ConnectOptions(context.Background(), co(host, port), sslconn.WithMode(mode), sslconn.WithCAFile(certs.CA))
			if err != nil {
				tb.Fatal(err)
			}
			return rttClient{c}
		}
	}
	// Connect's preflight connection is the driver's monitor's first
	// (mongocore.Park): no round trip more than bare. Under PREFERRED,
	// FirstExtra is the finding out whether the address speaks TLS: a
	// probe connection beside the handshake against a TLS server, a
	// ClientHello's connection and its answer against a plaintext one.
	s := env.Servers[1]
	tlsPort, plainPort := s.Addr(s.TLSPort), s.Addr(s.Port)
	return []matrix.RTTCase{
		{Name: "DISABLED", Target: plainPort, Bare: bare(sslconn.Disabled), Lib: lib(sslconn.Disabled)},
		{Name: "PREFERRED", Target: tlsPort, Bare: bare(sslconn.Preferred), Lib: lib(sslconn.Preferred), FirstExtra: 1},
		{Name: "PREFERRED/plaintext-server", Target: env.Servers[0].Addr(env.Servers[0].Port), Bare: plainBare, Lib: lib(sslconn.Preferred), FirstExtra: 2},
		{Name: "REQUIRED", Target: tlsPort, Bare: bare(sslconn.Required), Lib: lib(sslconn.Required)},
		{Name: "VERIFY_CA", Target: tlsPort, Bare: bare(sslconn.VerifyCA), Lib: lib(sslconn.VerifyCA)},
		{Name: "VERIFY_IDENTITY", Target: tlsPort, Bare: bare(sslconn.VerifyIdentity), Lib: lib(sslconn.VerifyIdentity)},
	}
}

// TestRoundTrips: per mode, the library makes no more round trips than
// bare mongo-driver, through a relay with a small delay.
func TestRoundTrips(t *testing.T) { matrix.TestRTT(t, rttCases(t)) }

// BenchmarkRTT: connect time and round trips at 1 ms and 25 ms RTT.
//
//	go test -run '^$' -bench RTT -benchtime 3x ./mongossl
func BenchmarkRTT(b *testing.B) { matrix.BenchRTT(b, rttCases(b)) }
