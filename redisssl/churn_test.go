package redisssl

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestSessionResumption: a client whose connections are replaced one
// after another (here every connection idle for a nanosecond is) resumes
// its TLS sessions with the default session cache, Redis issuing tickets
// (see matrix.RunChurn).
func TestSessionResumption(t *testing.T) {
	certs, servers := env(t)
	s := servers[1]
	matrix.RunChurn(t, matrix.Churn{Server: "Redis", Port: s.TLSPort,
		Open: func(t *testing.T, opts []sslconn.Option) (func(context.Context) error, func() string) {
			opts = append([]sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA)}, opts...)
			c, err := NewClientFromOptions(&redis.Options{Addr: fmt.Sprintf("localhost:%d", s.TLSPort), Password: testenv.RedisPassword,
				PoolSize: 1, ConnMaxIdleTime: time.Nanosecond,
				MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return func(ctx context.Context) error { return c.Ping(ctx).Err() }, nil
		}})
}
