package redisssl

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// rttClient is a go-redis client; each Connect takes a new connection of
// its pool (the earlier ones are held) and PINGs on it.
type rttClient struct {
	*redis.Client
	conns []*redis.Conn
}

func (c *rttClient) Connect(ctx context.Context) error {
	cn := c.Conn()
	c.conns = append(c.conns, cn)
	return cn.Ping(ctx).Err()
}

func (c *rttClient) Close() error {
	var errs []error
	for _, cn := range c.conns {
		errs = append(errs, cn.Close())
	}
	return errors.Join(append(errs, c.Client.Close())...)
}

// rttCases: each mode against the TLS server (S1: its plaintext port for
// DISABLED, its TLS port otherwise), and PREFERRED against the server
// without TLS (S0); bare go-redis without TLSConfig, or with the
// hand-made one of matrix.BareTLS (InsecureSkipVerify for PREFERRED).
// Maintenance notifications are off on both sides, as in the connect
// benchmarks.
func rttCases(t testing.TB) []matrix.RTTCase {
	certs, servers := env(t)
	opts := func(host string, port int) *redis.Options {
		return &redis.Options{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Password: testenv.RedisPassword, PoolSize: 4,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
	}
	bare := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			o := opts(host, port)
			switch mode {
			case sslconn.Disabled:
			case sslconn.Preferred:
				o.TLSConfig = matrix.BareTLS(tb, certs.CA, sslconn.Required, host)
			default:
				o.TLSConfig = matrix.BareTLS(tb, certs.CA, mode, host)
			}
			return &rttClient{Client: redis.NewClient(o)}
		}
	}
	plainBare := func(tb testing.TB, host string, port int) matrix.RTTClient {
		return &rttClient{Client: redis.NewClient(opts(host, port))}
	}
	lib := func(mode sslconn.Mode) func(testing.TB, string, int) matrix.RTTClient {
		return func(tb testing.TB, host string, port int) matrix.RTTClient {
			c, err := NewClientFromOptions(opts(host, port), sslconn.WithMode(mode), sslconn.WithCAFile(certs.CA))
			if err != nil {
				tb.Fatal(err)
			}
			return &rttClient{Client: c}
		}
	}
	s := servers[1]
	tlsPort, plainPort := s.Addr(s.TLSPort), s.Addr(s.Port)
	return []matrix.RTTCase{
		{Name: "DISABLED", Target: plainPort, Bare: bare(sslconn.Disabled), Lib: lib(sslconn.Disabled)},
		{Name: "PREFERRED", Target: tlsPort, Bare: bare(sslconn.Preferred), Lib: lib(sslconn.Preferred), FirstExtra: 1},
		{Name: "PREFERRED/plaintext-server", Target: servers[0].Addr(servers[0].Port), Bare: plainBare, Lib: lib(sslconn.Preferred), FirstExtra: rttPreferredFirst},
		{Name: "REQUIRED", Target: tlsPort, Bare: bare(sslconn.Required), Lib: lib(sslconn.Required)},
		{Name: "VERIFY_CA", Target: tlsPort, Bare: bare(sslconn.VerifyCA), Lib: lib(sslconn.VerifyCA)},
		{Name: "VERIFY_IDENTITY", Target: tlsPort, Bare: bare(sslconn.VerifyIdentity), Lib: lib(sslconn.VerifyIdentity)},
	}
}

// rttPreferredFirst: PREFERRED's first connection to an address not
// known yet asks the plaintext question (PING) on a second connection
// while the TLS handshake runs (core's dialPreferred): against a TLS port
// that is one more connection, in parallel (FirstExtra 1 above); against
// a plaintext one the ClientHello's connection and its answer too, and
// the TLS check it starts at once, off the request path, when the server
// closed at PREFERRED's half-close (core's recheckNow: a relay that drops
// half-closes may have lost a late TLS answer), if it is under way when
// the relay's counters are read.
const rttPreferredFirst = 3

// TestRoundTrips: per mode, the library makes no more round trips than
// bare go-redis, through a relay with a small delay.
func TestRoundTrips(t *testing.T) { matrix.TestRTT(t, rttCases(t)) }

// BenchmarkRTT: connect time and round trips at 1 ms and 25 ms RTT.
//
//	go test -run '^$' -bench RTT -benchtime 3x ./redisssl
func BenchmarkRTT(b *testing.B) { matrix.BenchRTT(b, rttCases(b)) }
