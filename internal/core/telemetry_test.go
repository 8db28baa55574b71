package core

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/sslconn/sslconn/sslconn"
)

// The SDK stays out of this module (internal/integration tests with it):
// here a meter provider that keeps what the counters and histograms are
// given is enough to check what the core records.

type captured struct {
	name  string
	value float64
	attrs attribute.Set
}

type capture struct {
	mu   sync.Mutex
	seen []captured
}

func (c *capture) add(name string, v float64, attrs attribute.Set) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, captured{name, v, attrs})
}

// find returns what name was given with attributes holding want.
func (c *capture) find(name string, want ...attribute.KeyValue) []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []captured
	for _, s := range c.seen {
		ok := s.name == name
		for _, kv := range want {
			v, has := s.attrs.Value(kv.Key)
			ok = ok && has && v == kv.Value
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

type capProvider struct {
	noop.MeterProvider
	c *capture
}

func (p capProvider) Meter(string, ...metric.MeterOption) metric.Meter { return capMeter{c: p.c} }

type capMeter struct {
	noop.Meter
	c *capture
}

func (m capMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return capCounter{name: name, c: m.c}, nil
}

func (m capMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return capHistogram{name: name, c: m.c}, nil
}

type capCounter struct {
	noop.Int64Counter
	name string
	c    *capture
}

func (k capCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	k.c.add(k.name, float64(v), metric.NewAddConfig(opts).Attributes())
}

type capHistogram struct {
	noop.Float64Histogram
	name string
	c    *capture
}

func (h capHistogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.c.add(h.name, v, metric.NewRecordConfig(opts).Attributes())
}

func capturing() (*capture, sslconn.Option) {
	c := &capture{}
	return c, sslconn.WithMeterProvider(capProvider{c: c})
}

// TestTelemetryPreferredPlaintext: a PREFERRED connection to a server that
// closes on the ClientHello is made in plaintext and counted so, with the
// engine and the server's address.
func TestTelemetryPreferredPlaintext(t *testing.T) {
	srv := startTLSServer(t, nil, plainCloses)
	got, withMeter := capturing()
	cfg, err := Resolve(Spec{Engine: "redis"}, sslconn.WithMode(sslconn.Preferred), withMeter)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.Dial(t.Context(), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	port := srv.l.Addr().(*net.TCPAddr).Port
	server := []attribute.KeyValue{keySystem.String("redis"), keyAddress.String("127.0.0.1"), keyPort.Int(port)}
	if n := len(got.find("sslconn.connections", append(server, keyMode.String("PREFERRED"), keyOutcome.String("plaintext"))...)); n != 1 {
		t.Errorf("%d plaintext connections counted; want 1: %v", n, got.seen)
	}
	if n := len(got.find("sslconn.plaintext_fallbacks", server...)); n != 1 {
		t.Errorf("%d plaintext fallbacks counted; want 1: %v", n, got.seen)
	}
	if n := len(got.find("db.client.connection.create_time", server...)); n != 1 {
		t.Errorf("%d create times; want 1: %v", n, got.seen)
	}
}

// TestTelemetryRecovery: an address that refuses and then accepts
// records its retries and, at the connection made, one recovery timed
// from the first refusal.
func TestTelemetryRecovery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused from now on, until it listens again
	got, withMeter := capturing()
	cfg, err := Resolve(Spec{Engine: "redis"}, sslconn.WithMode(sslconn.Disabled), withMeter,
		sslconn.WithBackoff(sslconn.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	const down = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		conn, err := cfg.Dial(t.Context(), "tcp", addr, nil)
		if err == nil {
			conn.Close()
		}
		done <- err
	}()
	time.Sleep(down)
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer l.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got.find("sslconn.retries", keyAddress.String("127.0.0.1"))) == 0 {
		t.Errorf("no retry counted: %v", got.seen)
	}
	rec := got.find("sslconn.recovery.duration", keyAddress.String("127.0.0.1"))
	if len(rec) != 1 || rec[0].value < (down/2).Seconds() {
		t.Errorf("recoveries %v; want one of about %s", rec, down)
	}
}

// TestTelemetryDeadPeer: a server found silent is counted once, by
// address, until it is heard from again.
func TestTelemetryDeadPeer(t *testing.T) {
	got, withMeter := capturing()
	if _, err := Resolve(Spec{}, withMeter); err != nil {
		t.Fatal(err)
	}
	const server = "192.0.2.7:6379" // TEST-NET-1: no test talks to it
	defer heard(server)
	foundSilent(server)
	foundSilent(server) // the same silence
	if n := len(got.find("sslconn.dead_peers", keyAddress.String("192.0.2.7"), keyPort.Int(6379))); n != 1 {
		t.Errorf("%d dead peers counted; want 1: %v", n, got.seen)
	}
}
