package mongossl

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// BenchmarkRecovery: REQUIRED through mongossl against the bare driver with
// tls=true&tlsInsecure=true, across restarts of a TLS server.
//
//	go test -run '^$' -bench Recovery -benchtime 5x ./mongossl
func BenchmarkRecovery(b *testing.B) {
	_, s := startOwn(b, func(c *testenv.Certs) testenv.TLS {
		conf := testenv.Scenario(c, 1)
		conf.OnPlainPort = true
		return conf
	})
	ping := func(c *mongo.Client) func(context.Context) error {
		return func(ctx context.Context) error { return c.Ping(ctx, nil) }
	}
	b.Run("sslconn", func(b *testing.B) {
		c, err := Connect(context.Background(), mongoURI("localhost", s.Port, ""), sslconn.WithMode(sslconn.Required))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Disconnect(context.Background())
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, s.Start, ping(c))
	})
	b.Run("bare", func(b *testing.B) {
		c, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://localhost:%d/?tls=true&tlsInsecure=true", s.Port)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Disconnect(context.Background())
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, s.Start, ping(c))
	})
}
