package redisssl

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/netns"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestSilentPrimary: a primary that goes silent in a failover (see
// matrix.RunSilent).
func TestSilentPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("needs servers")
	}
	matrix.RunSilent(t, lazyCerts.Get(t), matrix.Silent{
		Start: func(h *netns.Host, conf testenv.TLS) (matrix.SilentServer, error) {
			s, err := testenv.StartRedisOn(h, conf)
			if err != nil {
				return nil, err
			}
			return matrix.ProcessServer{Server: s, PortFor: func(s *testenv.Server, mode sslconn.Mode) int {
				return matrix.PortFor(1, s, mode)
			}}, nil
		},
		Open: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			c, err := NewClient(fmt.Sprintf("redis://:%s@%s/0", testenv.RedisPassword, addr), sslconn.WithMode(mode))
			if err != nil {
				return nil, err
			}
			return redisWorkload{c}, nil
		},
		Long: func(ctx context.Context, w matrix.Workload, d time.Duration) error {
			err := w.(redisWorkload).c.BLPop(ctx, d, "sslconn-never-pushed").Err()
			if err == redis.Nil {
				return nil
			}
			return err
		},
		// The bare driver: InsecureSkipVerify is its REQUIRED.
		OpenBare: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			o := &redis.Options{Addr: addr, Password: testenv.RedisPassword}
			if mode != sslconn.Disabled {
				o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			}
			return redisWorkload{redis.NewClient(o)}, nil
		},
		Modes: []sslconn.Mode{sslconn.Disabled, sslconn.Required},
	})
}
