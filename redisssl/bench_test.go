package redisssl

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// recoveryServer is TLS-only on its one port; BenchmarkRecovery stops and
// starts it with the same set-up.
var recoveryServer = testenv.NewLazy(func() (*testenv.Server, error) {
	certs, err := newCerts()
	if err != nil {
		return nil, err
	}
	conf := testenv.Scenario(certs, 1)
	conf.OnPlainPort = true
	return testenv.StartRedis(conf)
})

// BenchmarkRecovery: REQUIRED through redisssl against bare go-redis with
// InsecureSkipVerify, across restarts of a TLS server.
//
//	go test -run '^$' -bench Recovery -benchtime 5x ./redisssl
func BenchmarkRecovery(b *testing.B) {
	s := recoveryServer.Get(b)
	ping := func(c *redis.Client) func(context.Context) error {
		return func(ctx context.Context) error { return c.Ping(ctx).Err() }
	}
	b.Run("sslconn", func(b *testing.B) {
		c, err := NewClient(redisURL("localhost", s.Port, ""), sslconn.WithMode(sslconn.Required))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, s.Start, ping(c))
	})
	b.Run("bare", func(b *testing.B) {
		c := redis.NewClient(&redis.Options{Addr: testenv.Addr(s.Port), Password: testenv.RedisPassword,
			TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		defer c.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, s.Start, ping(c))
	})
}
