package integration

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

// tracer returns a tracer provider whose spans end up, synchronously, in
// an in-memory exporter the test reads.
func tracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// wantSpans fails the test unless each of want names an ended span that
// recorded no error. Other spans may have failed: go-redis, for one, sends
// CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS on connect, which a Redis
// older than 7.2 / 8.0 refuses, and it goes on without them.
func wantSpans(t *testing.T, exp *tracetest.InMemoryExporter, want ...string) {
	t.Helper()
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
		if slices.Contains(want, s.Name) && s.Status.Code == codes.Error {
			t.Errorf("span %s: error %s %v", s.Name, s.Status.Description, s.Events)
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("no %q span; spans: %v", w, names)
		}
	}
}

// TestOtelSQL: otelsql wraps the mysqlssl connector itself, so the
// connects (with their TLS handshakes and retries) are traced as well as
// the queries; Verify works through the wrapper.
func TestOtelSQL(t *testing.T) {
	t.Parallel()
	dsn := mysqlDSN(t)
	ctx := testCtx(t)
	tp, exp := tracer(t)

	connector, err := mysqlssl.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := otelsql.OpenDB(connector, otelsql.WithTracerProvider(tp),
		otelsql.WithAttributes(attribute.String("db.system.name", "mariadb")),
		// go-sql-driver/mysql answers a query with arguments driver.ErrSkip
		// (database/sql then prepares it): not an error worth a red span.
		otelsql.WithSpanOptions(otelsql.SpanOptions{DisableErrSkip: true}))
	defer db.Close()

	var n int
	if err := db.QueryRowContext(ctx, "SELECT ? + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT ? + 1: %d %v", n, err)
	}
	st, err := mysqlssl.Verify(ctx, db)
	checkEncrypted(t, st, err)
	wantSpans(t, exp, "sql.connector.connect", "sql.conn.query", "sql.rows")
}

// TestRedisOtel: redisotel's tracing hooks on a redisssl client built from
// go-redis options in code: commands, and the dials through redisssl's TLS
// dialer, are traced.
func TestRedisOtel(t *testing.T) {
	t.Parallel()
	c, s := certs.Get(t), redisServer.Get(t)
	ctx := testCtx(t)
	tp, exp := tracer(t)

	rdb, err := redisssl.NewClientFromOptions(&redis.Options{Addr: hostPort(s.TLSPort), Password: testenv.RedisPassword},
		sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(c.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp)); err != nil {
		t.Fatal(err)
	}

	if err := rdb.Set(ctx, "otel:key", "value", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "otel:key").Result(); err != nil || v != "value" {
		t.Fatalf("GET: %q %v", v, err)
	}
	st, err := redisssl.Verify(ctx, rdb)
	checkEncrypted(t, st, err)
	wantSpans(t, exp, "redis.dial", "set", "get")
}

// commandTracer is an event.CommandMonitor that records one OpenTelemetry
// span per MongoDB command, as otelmongo does: otelmongo has no release for
// mongo-driver v2 on the module proxy
// (go.opentelemetry.io/contrib/instrumentation/go.mongodb.org/mongo-driver/v2/mongo/otelmongo
// is excluded from the contrib releases), so a service on v2 writes this
// monitor itself, and any other monitor goes in the same way.
func commandTracer(tp trace.TracerProvider) *event.CommandMonitor {
	tr := tp.Tracer("mongo")
	var spans sync.Map // RequestID -> trace.Span
	end := func(id int64, err error) {
		if s, ok := spans.LoadAndDelete(id); ok {
			if err != nil {
				s.(trace.Span).SetStatus(codes.Error, err.Error())
			}
			s.(trace.Span).End()
		}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			_, s := tr.Start(ctx, e.CommandName, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.String("db.system.name", "mongodb"),
					attribute.String("db.namespace", e.DatabaseName),
					attribute.String("db.operation.name", e.CommandName)))
			spans.Store(e.RequestID, s)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID, nil) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID, e.Failure) },
	}
}

// TestMongoMonitor: a command monitor on the driver's own options, kept by
// mongossl.ConnectOptions, which adds TLS in VERIFY_IDENTITY: every
// command is traced, over verified TLS. Options from mongossl.ClientOptions
// (the URI's ssl-* parameters) take a monitor the same way.
func TestMongoMonitor(t *testing.T) {
	t.Parallel()
	c, s := certs.Get(t), ferretdb.Get(t)
	uri := mongoURI(t)

	check := func(t *testing.T, connect func(context.Context, *event.CommandMonitor) (*mongo.Client, error)) {
		ctx := testCtx(t)
		tp, exp := tracer(t)
		client, err := connect(ctx, commandTracer(tp))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Disconnect(context.Background())

		coll := client.Database("integration").Collection(strings.ReplaceAll(t.Name(), "/", "_"))
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := coll.FindOne(ctx, bson.D{{Key: "x", Value: 1}}).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := mongossl.Verify(ctx, client)
		checkEncrypted(t, st, err)
		wantSpans(t, exp, "insert", "find", "ping")
	}
	t.Run("ConnectOptions", func(t *testing.T) {
		check(t, func(ctx context.Context, m *event.CommandMonitor) (*mongo.Client, error) {
			co := options.Client().ApplyURI("mongodb://" + hostPort(s.TLSPort)).SetMonitor(m)
			return mongossl.ConnectOptions(ctx, co, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(c.CA))
		})
	})
	t.Run("ClientOptions", func(t *testing.T) {
		check(t, func(ctx context.Context, m *event.CommandMonitor) (*mongo.Client, error) {
			co, err := mongossl.ClientOptions(uri)
			if err != nil {
				return nil, err
			}
			return mongossl.ConnectOptions(ctx, co.SetMonitor(m))
		})
	})
}
