package matrix

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/delay"
)

// RTTClient is one client of an engine, made for one address, for the
// round-trip measurements.
type RTTClient interface {
	// Connect opens one new connection and proves it with the least the
	// engine needs (a login, a ping), and keeps it open until Close: a
	// closing connection's last bytes would count in the next measure.
	Connect(ctx context.Context) error
	Close() error
}

// RTTCase is one engine × mode row: the library and the bare driver set
// up by hand for the same mode, against one server.
type RTTCase struct {
	Name   string // the mode, and the server when it is not the TLS one
	Target string // the server's address, behind the relay
	// Bare and Lib make a client for host:port, the relay.
	Bare, Lib func(tb testing.TB, host string, port int) RTTClient
	// FirstExtra is what the library may spend above the bare driver on a
	// client's first connection, and why (PREFERRED, an address not known
	// yet: it has to find out whether the server speaks TLS).
	FirstExtra int64
	// KnownExtra is what the library spends above the bare driver on a
	// client's first connection today, whatever the mode, and where that
	// comes from in the code: a debt to pay off, stated so that it cannot
	// grow unnoticed. A later connection gets no allowance.
	KnownExtra int64
	Why        string
}

// RTTResult is one client's first connection and a later one (a new
// connection of the same client, to an address it knows).
type RTTResult struct {
	First, Later         delay.Stats
	FirstTime, LaterTime time.Duration
	PerConn              []delay.Stats // the relay's, per connection, at the end
}

// rttTimeout bounds one connect through the relay (25 ms RTT, a dozen
// round trips, a loaded machine).
const rttTimeout = time.Minute

// MeasureRTT makes a client through r and measures its first connection
// and a later one.
func MeasureRTT(tb testing.TB, r *delay.Relay, newClient func(tb testing.TB, host string, port int) RTTClient) RTTResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rttTimeout)
	defer cancel()
	var res RTTResult
	// The first connection is a first one for the process too: what
	// PREFERRED learnt of the relay's address in an earlier run is
	// forgotten.
	core.ForgetPreferred(net.JoinHostPort("localhost", strconv.Itoa(r.Port())))
	before := r.Stats()
	start := time.Now()
	c := newClient(tb, "localhost", r.Port())
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("first connection: %v", err)
	}
	res.FirstTime, res.First = time.Since(start), r.Stats().Sub(before)
	before = r.Stats()
	start = time.Now()
	if err := c.Connect(ctx); err != nil {
		tb.Fatalf("later connection: %v", err)
	}
	res.LaterTime, res.Later = time.Since(start), r.Stats().Sub(before)
	res.PerConn = r.PerConn()
	return res
}

// RTTRelay starts a relay to target with oneWay delay, stopped at the
// end of tb.
func RTTRelay(tb testing.TB, target string, oneWay time.Duration) *delay.Relay {
	tb.Helper()
	r, err := delay.Start(target, oneWay, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// TestRTT checks, per case, at a small RTT, that the library uses no more
// round trips than the bare driver: round-trip counts are deterministic,
// unlike durations.
func TestRTT(t *testing.T, cases []RTTCase) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			bare := MeasureRTT(t, RTTRelay(t, c.Target, 500*time.Microsecond), c.Bare)
			lib := MeasureRTT(t, RTTRelay(t, c.Target, 500*time.Microsecond), c.Lib)
			t.Logf("first: bare %v; sslconn %v", bare.First, lib.First)
			t.Logf("later: bare %v; sslconn %v", bare.Later, lib.Later)
			t.Logf("per connection: bare %v; sslconn %v", bare.PerConn, lib.PerConn)
			if c.KnownExtra > 0 {
				t.Logf("known extra: %d RTT: %s", c.KnownExtra, c.Why)
			}
			if got, limit := lib.First.RoundTrips(), bare.First.RoundTrips()+c.FirstExtra+c.KnownExtra; got > limit {
				t.Errorf("first connection: sslconn %d round trips, bare %d (+%d allowed)", got, bare.First.RoundTrips(), limit-bare.First.RoundTrips())
			}
			limit := bare.Later.RoundTrips()
			if c.FirstExtra > 0 && lib.Later.Conns == bare.Later.Conns+1 && lib.Later.Waits <= bare.Later.Waits {
				// PREFERRED at an address that has answered TLS probes in
				// parallel once the TLS answer is 50 ms late: a loaded
				// machine's handshake can be, even at this RTT. A
				// connection more, no wait more.
				t.Logf("later connection: a probe connection beside the handshake (no wait)")
				limit++
			}
			if got := lib.Later.RoundTrips(); got > limit {
				t.Errorf("later connection: sslconn %d round trips, bare %d", got, bare.Later.RoundTrips())
			}
		})
	}
}

// RTTs are the round trips the benchmarks put between client and server:
// inside a region, and across the Internet.
var RTTs = []time.Duration{time.Millisecond, 25 * time.Millisecond}

// BenchRTT runs each case at each of RTTs, the bare driver and the
// library, and reports the first and a later connection's time (ms) and
// round trips (RTTs, connections) per client.
//
//	go test -run '^$' -bench RTT -benchtime 3x ./mysqlssl
func BenchRTT(b *testing.B, cases []RTTCase) {
	for _, rtt := range RTTs {
		for _, c := range cases {
			for _, impl := range []string{"bare", "sslconn"} {
				b.Run(fmt.Sprintf("rtt=%v/%s/impl=%s", rtt, c.Name, impl), func(b *testing.B) {
					newClient := c.Bare
					if impl == "sslconn" {
						newClient = c.Lib
					}
					r := RTTRelay(b, c.Target, rtt/2)
					var sum RTTResult
					n := 0
					for b.Loop() {
						res := MeasureRTT(b, r, newClient)
						sum.FirstTime += res.FirstTime
						sum.LaterTime += res.LaterTime
						sum.First, sum.Later = res.First, res.Later // deterministic: the last
						n++
					}
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(float64(sum.FirstTime.Microseconds())/1e3/float64(n), "first-ms")
					b.ReportMetric(float64(sum.LaterTime.Microseconds())/1e3/float64(n), "later-ms")
					b.ReportMetric(float64(sum.First.RoundTrips()), "first-RTTs")
					b.ReportMetric(float64(sum.Later.RoundTrips()), "later-RTTs")
					b.ReportMetric(float64(sum.First.Conns), "first-conns")
					b.ReportMetric(float64(sum.Later.Conns), "later-conns")
				})
			}
		}
	}
}
