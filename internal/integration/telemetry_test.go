package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Servers of their own for the plaintext and restart tests (scenario S0,
// no TLS at all), so that stopping one disturbs no other test.
var (
	plainMariaDB = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartMariaDB(testenv.Scenario(c, 0))
	})
	plainRedis = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartRedis(testenv.Scenario(c, 0))
	})
	plainFerretDB = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := makeCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartFerretDB(testenv.Scenario(c, 0))
	})
	plainTDS = testenv.NewLazy(func() (*tdsserver.Server, error) {
		return tdsserver.Start(plainTDSConfig())
	})
)

func plainTDSConfig() tdsserver.Config {
	c, err := tdsserver.ForScenario(testenv.TLS{Off: true}, tdsUser, tdsPassword)
	if err != nil {
		panic(err) // S0 loads no certificate
	}
	return c
}

// telEngine is one adapter as the telemetry tests drive it.
type telEngine struct {
	name, system string
	secret       string // the password its connections log in with ("": none)
	// detached: the driver dials on contexts of its own, never the
	// caller's (go-redis v9 queues its dials on context.Background), so
	// the connection's spans are roots.
	detached bool
	// tlsAddr and plainAddr are the addresses of a server in S1 (TLS
	// offered) and of the engine's own S0 server (no TLS).
	tlsAddr, plainAddr func(t *testing.T) string
	// open makes a client of addr and returns its ping and close.
	open func(ctx context.Context, addr string, opts ...sslconn.Option) (func(context.Context) error, func(), error)
	// restart stops the S0 server, runs during while it is down, then
	// starts it again.
	restart func(t *testing.T, during func())
}

func openSQL(db *sql.DB) (func(context.Context) error, func(), error) {
	return db.PingContext, func() { db.Close() }, nil
}

// stopStart is restart for a harness server.
func stopStart(s *testenv.Server) func(t *testing.T, during func()) {
	return func(t *testing.T, during func()) {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		during()
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
	}
}

var telEngines = []telEngine{
	{
		name: "mysqlssl", system: "mysql", secret: testenv.MySQLPassword,
		tlsAddr:   func(t *testing.T) string { return hostPort(mariadb.Get(t).Port) },
		plainAddr: func(t *testing.T) string { return hostPort(plainMariaDB.Get(t).Port) },
		open: func(_ context.Context, addr string, opts ...sslconn.Option) (func(context.Context) error, func(), error) {
			c, err := mysqlssl.NewConnector(fmt.Sprintf("%s:%s@tcp(%s)/%s", testenv.MySQLUser, testenv.MySQLPassword, addr, testenv.MySQLDatabase), opts...)
			if err != nil {
				return nil, nil, err
			}
			return openSQL(sql.OpenDB(c))
		},
		restart: func(t *testing.T, during func()) { stopStart(plainMariaDB.Get(t))(t, during) },
	},
	{
		name: "redisssl", system: "redis", secret: testenv.RedisPassword, detached: true,
		tlsAddr:   func(t *testing.T) string { return hostPort(redisServer.Get(t).TLSPort) },
		plainAddr: func(t *testing.T) string { return hostPort(plainRedis.Get(t).Port) },
		open: func(_ context.Context, addr string, opts ...sslconn.Option) (func(context.Context) error, func(), error) {
			rdb, err := redisssl.NewClientFromOptions(&redis.Options{Addr: addr, Password: testenv.RedisPassword}, opts...)
			if err != nil {
				return nil, nil, err
			}
			return func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, func() { rdb.Close() }, nil
		},
		restart: func(t *testing.T, during func()) { stopStart(plainRedis.Get(t))(t, during) },
	},
	{
		name: "mongossl", system: "mongodb",
		tlsAddr:   func(t *testing.T) string { return hostPort(ferretdb.Get(t).TLSPort) },
		plainAddr: func(t *testing.T) string { return hostPort(plainFerretDB.Get(t).Port) },
		open: func(ctx context.Context, addr string, opts ...sslconn.Option) (func(context.Context) error, func(), error) {
			client, err := mongossl.Connect(ctx, "mongodb://"+addr+"/", opts...)
			if err != nil {
				return nil, nil, err
			}
			return func(ctx context.Context) error { return client.Ping(ctx, nil) },
				func() { _ = client.Disconnect(context.Background()) }, nil
		},
		restart: func(t *testing.T, during func()) { stopStart(plainFerretDB.Get(t))(t, during) },
	},
	{
		name: "mssqlssl", system: "microsoft.sql_server", secret: tdsPassword,
		tlsAddr:   func(t *testing.T) string { return hostPort(tds.Get(t).Port()) },
		plainAddr: func(t *testing.T) string { return hostPort(plainTDS.Get(t).Port()) },
		open: func(_ context.Context, addr string, opts ...sslconn.Option) (func(context.Context) error, func(), error) {
			c, err := mssqlssl.NewConnector(fmt.Sprintf("sqlserver://%s:%s@%s?database=master", tdsUser, tdsPassword, addr), opts...)
			if err != nil {
				return nil, nil, err
			}
			return openSQL(sql.OpenDB(c))
		},
		restart: func(t *testing.T, during func()) {
			s := plainTDS.Get(t)
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			during()
			if err := s.Listen(plainTDSConfig()); err != nil {
				t.Fatal(err)
			}
		},
	},
}

// telemetry is an SDK meter provider with a manual reader, and a tracer
// provider with an in-memory exporter, as the options that install them.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.InMemoryExporter
	tracer trace.Tracer // the caller's, on the same provider
	opts   []sslconn.Option
}

func newTelemetry(t *testing.T) *telemetry {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tp, exp := tracer(t)
	return &telemetry{reader: reader, spans: exp, tracer: tp.Tracer("caller"), opts: []sslconn.Option{sslconn.WithMeterProvider(mp), sslconn.WithTracerProvider(tp)}}
}

// point is one data point of a metric.
type point struct {
	attrs attribute.Set
	value float64 // a sum's or gauge's value, a histogram's sum
	count uint64  // a histogram's count
}

func (tel *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// points are the data points of the metric called name.
func points(rm metricdata.ResourceMetrics, name string) []point {
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out = append(out, point{attrs: p.Attributes, value: float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out = append(out, point{attrs: p.Attributes, value: p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out = append(out, point{attrs: p.Attributes, value: p.Sum, count: p.Count})
				}
			}
		}
	}
	return out
}

// has reports whether attrs holds every key=value of want.
func has(attrs attribute.Set, want map[string]string) bool {
	for k, v := range want {
		got, ok := attrs.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

// find returns the points of name whose attributes hold want, failing the
// test if there is none.
func find(t *testing.T, rm metricdata.ResourceMetrics, name string, want map[string]string) []point {
	t.Helper()
	var out []point
	for _, p := range points(rm, name) {
		if has(p.attrs, want) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		var seen []string
		for _, p := range points(rm, name) {
			seen = append(seen, p.attrs.Encoded(attribute.DefaultEncoder()))
		}
		t.Fatalf("%s: no point with %v; points: %v", name, want, seen)
	}
	return out
}

// expiringCA is a CA certificate that expires in ten days, made here (its
// key is thrown away): a CA bundle that holds it puts it in the gauge.
func expiringCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "sslconn-expiring-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTelemetryTLS: with an SDK meter provider and tracer provider, one
// VERIFY_IDENTITY connection on each adapter records
// db.client.connection.create_time with the server's attributes, a tls
// outcome with its version, both certificates of its chain of trust in the
// expiry gauge (among them a CA that expires in ten days), and spans
// under the caller's (go-redis dials on a context of its own: there, the
// connection's span is a root); no attribute carries a secret.
func TestTelemetryTLS(t *testing.T) {
	for _, e := range telEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			c := certs.Get(t)
			addr := e.tlsAddr(t)
			ca, err := os.ReadFile(c.CA)
			if err != nil {
				t.Fatal(err)
			}
			ca = append(ca, expiringCA(t)...)
			tel := newTelemetry(t)
			ctx, caller := tel.tracer.Start(testCtx(t), "caller")
			opts := append([]sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCA(ca)}, tel.opts...)
			ping, closeFn, err := e.open(ctx, addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if err := ping(ctx); err != nil {
				t.Fatal(err)
			}
			caller.End()

			rm := tel.collect(t)
			port := addr[strings.LastIndex(addr, ":")+1:]
			server := map[string]string{"db.system.name": e.system, "server.address": "localhost", "server.port": port}
			for _, p := range find(t, rm, "db.client.connection.create_time", server) {
				if p.count == 0 || p.value <= 0 {
					t.Errorf("create_time: %d connections, %g s", p.count, p.value)
				}
				if p.attrs.Len() != 3 {
					t.Errorf("create_time has attributes %s; want db.system.name, server.address, server.port", p.attrs.Encoded(attribute.DefaultEncoder()))
				}
			}
			for _, p := range find(t, rm, "sslconn.connections", map[string]string{"db.system.name": e.system, "sslconn.mode": "VERIFY_IDENTITY", "sslconn.outcome": "tls"}) {
				if v, ok := p.attrs.Value("tls.protocol.version"); !ok || (v.AsString() != "1.2" && v.AsString() != "1.3") {
					t.Errorf("connection without its TLS version: %s", p.attrs.Encoded(attribute.DefaultEncoder()))
				}
			}
			for _, p := range find(t, rm, "sslconn.certificate.time_left", map[string]string{"sslconn.certificate.source": "ca", "sslconn.certificate.subject": "CN=sslconn-expiring-ca"}) {
				if days := p.value / 86400; days < 9.9 || days > 10 {
					t.Errorf("the expiring CA has %.2f days left; want 10", days)
				}
			}
			find(t, rm, "sslconn.certificate.time_left", map[string]string{"sslconn.certificate.source": "ca", "sslconn.certificate.subject": "CN=root-ca"})
			find(t, rm, "sslconn.certificate.time_left", map[string]string{"sslconn.certificate.source": "server", "sslconn.certificate.subject": "CN=sslconn-test-server", "server.address": "localhost"})

			parent := caller.SpanContext().SpanID()
			if e.detached {
				parent = trace.SpanID{}
			}
			tel.checkSpans(t, parent.String(), e.name != "mysqlssl" && e.name != "mssqlssl")
			tel.noSecrets(t, rm, e.secret, string(ca))
		})
	}
}

// checkSpans fails the test unless a sslconn.connect span sits under the
// caller's span (callerID), with its attempt under it and, where the
// library runs the handshake itself (handshake), the handshake's span
// under the attempt, none of them failed.
func (tel *telemetry) checkSpans(t *testing.T, callerID string, handshake bool) {
	t.Helper()
	spans := tel.spans.GetSpans()
	children := map[string][]tracetest.SpanStub{}
	var names []string
	for _, s := range spans {
		children[s.Parent.SpanID().String()] = append(children[s.Parent.SpanID().String()], s)
		names = append(names, s.Name+"<"+s.Parent.SpanID().String())
	}
	under := func(id, name string) *tracetest.SpanStub {
		for _, s := range children[id] {
			if s.Name == name && s.Status.Code != codes.Error {
				return &s
			}
		}
		return nil
	}
	connect := under(callerID, "sslconn.connect")
	if connect == nil {
		t.Fatalf("no sslconn.connect span under the caller's (%s): %v", callerID, names)
	}
	attempt := under(connect.SpanContext.SpanID().String(), "sslconn.attempt")
	if attempt == nil {
		t.Fatalf("no sslconn.attempt under sslconn.connect: %v", names)
	}
	if handshake && under(attempt.SpanContext.SpanID().String(), "sslconn.handshake") == nil {
		t.Fatalf("no sslconn.handshake under sslconn.attempt: %v", names)
	}
}

// noSecrets fails the test if any attribute of any metric or span, any
// span's name, event or status, holds one of secrets, a certificate, a
// key, or a URL or DSN.
func (tel *telemetry) noSecrets(t *testing.T, rm metricdata.ResourceMetrics, secrets ...string) {
	t.Helper()
	bad := []string{"BEGIN CERTIFICATE", "PRIVATE KEY", "://", "@tcp("}
	for _, s := range secrets {
		if s != "" {
			bad = append(bad, s)
		}
	}
	var texts []string
	addSet := func(set attribute.Set) {
		for _, kv := range set.ToSlice() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, p := range points(metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{m}}}}, m.Name) {
				addSet(p.attrs)
			}
		}
	}
	for _, s := range tel.spans.GetSpans() {
		texts = append(texts, s.Name, s.Status.Description)
		addSet(attribute.NewSet(s.Attributes...))
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			addSet(attribute.NewSet(e.Attributes...))
		}
	}
	if len(texts) < 10 {
		t.Fatalf("only %d texts to scan: %v", len(texts), texts)
	}
	for _, text := range texts {
		for _, b := range bad {
			if b != "" && strings.Contains(text, strings.TrimSpace(b)) && len(strings.TrimSpace(b)) > 0 {
				t.Errorf("telemetry holds %q: %q", b, text)
			}
		}
	}
}

// TestTelemetryPlaintextRestart: on each adapter, a PREFERRED connection
// to a server without TLS is counted plaintext (sslconn.connections and
// sslconn.plaintext_fallbacks); then the server restarts under an
// operation, which succeeds once it is back, and the recovery is
// recorded with its time.
func TestTelemetryPlaintextRestart(t *testing.T) {
	for _, e := range telEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			addr := e.plainAddr(t)
			port := addr[strings.LastIndex(addr, ":")+1:]
			server := map[string]string{"db.system.name": e.system, "server.address": "localhost", "server.port": port}
			tel := newTelemetry(t)
			ctx := testCtx(t)
			opts := append([]sslconn.Option{sslconn.WithMode(sslconn.Preferred)}, tel.opts...)
			ping, closeFn, err := e.open(ctx, addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if err := ping(ctx); err != nil {
				t.Fatal(err)
			}
			rm := tel.collect(t)
			find(t, rm, "sslconn.connections", map[string]string{"db.system.name": e.system, "sslconn.mode": "PREFERRED", "sslconn.outcome": "plaintext"})
			find(t, rm, "sslconn.plaintext_fallbacks", server)
			fellBack := false
			for _, s := range tel.spans.GetSpans() {
				for _, ev := range s.Events {
					fellBack = fellBack || (s.Name == "sslconn.connect" && ev.Name == "sslconn.plaintext_fallback")
				}
			}
			if !fellBack {
				t.Error("no sslconn.plaintext_fallback event on a sslconn.connect span")
			}
			if p := points(rm, "sslconn.recovery.duration"); len(p) != 0 {
				t.Fatalf("a recovery before any restart: %v", p)
			}

			const down = 1500 * time.Millisecond
			var pingErr = make(chan error, 1)
			e.restart(t, func() {
				go func() {
					// A ping on a connection the server closed fails
					// unsent (database/sql's Ping does not always take a
					// new connection for it): sent again, it waits for the
					// server in the library's retries.
					err := ping(ctx)
					for i := 0; i < 3 && err != nil; i++ {
						err = ping(ctx)
					}
					pingErr <- err
				}()
				time.Sleep(down)
			})
			if err := <-pingErr; err != nil {
				t.Fatalf("ping across the restart: %v", err)
			}
			rm = tel.collect(t)
			for _, p := range find(t, rm, "sslconn.recovery.duration", server) {
				if p.count == 0 || p.value < (down/2).Seconds() {
					t.Errorf("recovery: %d, %.3f s; want at least one, of about %s or more", p.count, p.value, down)
				}
				t.Logf("recoveries: %d, %.3f s in all", p.count, p.value)
			}
			find(t, rm, "sslconn.retries", server)
			tel.noSecrets(t, rm, e.secret)
		})
	}
}

// TestTelemetryFailure: on each adapter, a VERIFY_IDENTITY connection
// refused for its certificate (the client trusts another CA) is counted
// by its error kind, and its span is failed with the kind alone: no error
// text, so nothing secret, reaches telemetry.
func TestTelemetryFailure(t *testing.T) {
	for _, e := range telEngines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			c := certs.Get(t)
			addr := e.tlsAddr(t)
			tel := newTelemetry(t)
			ctx := testCtx(t)
			opts := append([]sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(c.OtherCA)}, tel.opts...)
			ping, closeFn, err := e.open(ctx, addr, opts...)
			if err == nil {
				defer closeFn()
				err = ping(ctx)
			}
			if !errors.Is(err, sslconn.ErrUnknownAuthority) {
				t.Fatalf("connecting with another CA: %v; want ErrUnknownAuthority", err)
			}
			rm := tel.collect(t)
			find(t, rm, "sslconn.connections", map[string]string{"db.system.name": e.system, "sslconn.mode": "VERIFY_IDENTITY", "sslconn.outcome": "ErrUnknownAuthority"})
			if p := points(rm, "db.client.connection.create_time"); len(p) != 0 {
				t.Errorf("create_time recorded for a connection not made: %v", p)
			}
			failed := false
			for _, s := range tel.spans.GetSpans() {
				if s.Name == "sslconn.connect" && s.Status.Code == codes.Error {
					failed = true
					if s.Status.Description != "ErrUnknownAuthority" {
						t.Errorf("connect span's status: %q; want the kind alone", s.Status.Description)
					}
				}
			}
			if !failed {
				t.Error("no failed sslconn.connect span")
			}
			tel.noSecrets(t, rm, e.secret, c.OtherCA)
		})
	}
}
