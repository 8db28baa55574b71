package mongossl

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The benchmarks compare the library with bare mongo-driver configured by
// hand for the same mode, in one run; sub-benchmarks are named impl=bare and
// impl=sslconn so that benchstat -col /impl prints the ratio (scripts/bench.sh).

func benchURI(b *testing.B, params string) string {
	return mongoURI("localhost", scenarios.Get(b).Servers[1].TLSPort, "maxPoolSize=1&"+params)
}

func bareClient(b *testing.B, ctx context.Context, mode sslconn.Mode) *mongo.Client {
	certs := scenarios.Get(b).Certs
	c, err := mongo.Connect(options.Client().ApplyURI(benchURI(b, "")).SetTLSConfig(matrix.BareTLS(b, certs.CA, mode, "localhost")))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func libClient(b *testing.B, ctx context.Context, mode sslconn.Mode, opts ...sslconn.Option) *mongo.Client {
	certs := scenarios.Get(b).Certs
	c, err := Connect(ctx, benchURI(b, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA), opts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// connectLoop makes a client, connects with a ping, and disconnects.
func connectLoop(b *testing.B, newClient func(context.Context) *mongo.Client) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := newClient(ctx)
		if err := c.Ping(ctx, nil); err != nil {
			b.Fatal(err)
		}
		_ = c.Disconnect(ctx)
	}
}

// BenchmarkConnect: a new client's first operation, TLS handshakes (the
// driver's monitor and pool connections, and the library's preflight) and
// hello included, per mode; floor is one crypto/tls dial and handshake.
//
//	go test -run '^$' -bench Connect -benchmem ./mongossl
func BenchmarkConnect(b *testing.B) {
	servers := scenarios.Get(b).Servers
	for _, mode := range matrix.BenchModes {
		b.Run(mode.String()+"/impl=bare", func(b *testing.B) {
			connectLoop(b, func(ctx context.Context) *mongo.Client { return bareClient(b, ctx, mode) })
		})
		// As shipped: reconnects resume TLS sessions where the server allows.
		b.Run(mode.String()+"/impl=sslconn", func(b *testing.B) {
			connectLoop(b, func(ctx context.Context) *mongo.Client { return libClient(b, ctx, mode) })
		})
		// Resumption off, like the bare driver: the like-for-like cost.
		b.Run(mode.String()+"/impl=sslconn-noresume", func(b *testing.B) {
			connectLoop(b, func(ctx context.Context) *mongo.Client { return libClient(b, ctx, mode, sslconn.WithSessionCache(nil)) })
		})
	}
	// The floor: the TLS handshake alone, with crypto/tls (last, so that
	// benchstat compares it with the bare driver).
	b.Run("REQUIRED/impl=tls-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", testenv.Addr(servers[1].TLSPort), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkResume: a new client with a session cache shared across
// clients against none; resumed/op counts resumed handshakes per client.
func BenchmarkResume(b *testing.B) {
	scenarios.Get(b)
	matrix.BenchResume(b, func(b *testing.B, opts ...sslconn.Option) {
		connectLoop(b, func(ctx context.Context) *mongo.Client { return libClient(b, ctx, sslconn.VerifyIdentity, opts...) })
	})
}

// BenchmarkQuery: a ping command on one open TLS connection, library
// against bare mongo-driver: the library must add nothing per operation.
func BenchmarkQuery(b *testing.B) {
	scenarios.Get(b)
	ctx := context.Background()
	for _, impl := range []string{"bare", "sslconn"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var c *mongo.Client
			if impl == "bare" {
				c = bareClient(b, ctx, sslconn.VerifyIdentity)
			} else {
				c = libClient(b, ctx, sslconn.VerifyIdentity)
			}
			defer c.Disconnect(ctx)
			db := c.Database("admin")
			if err := db.RunCommand(ctx, map[string]int{"ping": 1}).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := db.RunCommand(ctx, map[string]int{"ping": 1}).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnectPlaintext: PREFERRED, the default, against a server that
// serves plaintext only, next to bare mongo-driver in plaintext. first: a
// new client's first operation, the process knowing nothing of the address
// (the library has to find out that the port does not speak TLS);
// newclient: a new client's first operation, at an address another client
// of the process has dialed; later: an operation on a new connection of a
// client that knows (a pooled connection idle for a nanosecond is
// replaced).
//
//	go test -run '^$' -bench ConnectPlaintext ./mongossl
func BenchmarkConnectPlaintext(b *testing.B) {
	port := scenarios.Get(b).Servers[1].Port
	uri := mongoURI("localhost", port, "maxPoolSize=1")
	addr := fmt.Sprintf("localhost:%d", port) // as the driver dials it
	clients := map[string]func(ctx context.Context, b *testing.B, co *options.ClientOptions) *mongo.Client{
		"bare": func(_ context.Context, b *testing.B, co *options.ClientOptions) *mongo.Client {
			c, err := mongo.Connect(co)
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
		"sslconn": func(ctx context.Context, b *testing.B, co *options.ClientOptions) *mongo.Client {
			c, err := ConnectOptions(ctx, co, sslconn.WithMode(sslconn.Preferred))
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	}
	for _, impl := range []string{"bare", "sslconn"} {
		b.Run("first/impl="+impl, func(b *testing.B) {
			connectLoop(b, func(ctx context.Context) *mongo.Client {
				core.ForgetPreferred(addr)
				return clients[impl](ctx, b, options.Client().ApplyURI(uri))
			})
		})
		b.Run("newclient/impl="+impl, func(b *testing.B) {
			ctx := context.Background()
			c := clients[impl](ctx, b, options.Client().ApplyURI(uri)) // the process learns the address
			if err := c.Ping(ctx, nil); err != nil {
				b.Fatal(err)
			}
			_ = c.Disconnect(ctx)
			connectLoop(b, func(ctx context.Context) *mongo.Client { return clients[impl](ctx, b, options.Client().ApplyURI(uri)) })
		})
		b.Run("later/impl="+impl, func(b *testing.B) {
			ctx := context.Background()
			c := clients[impl](ctx, b, options.Client().ApplyURI(uri).SetMaxConnIdleTime(time.Nanosecond))
			defer func() { _ = c.Disconnect(ctx) }()
			if err := c.Ping(ctx, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Ping(ctx, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
