package redisssl

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// churnConns is how many connections a churn run replaces.
const churnConns = 100

// TestSessionResumption: a client whose connections are replaced one
// after another (steady churn: here every connection idle for a
// nanosecond is) resumes its TLS sessions with the library's default
// session cache (Redis issues tickets); without a cache nothing resumes.
// The CPU per connection, the process's and Redis's, is logged for both,
// twice each, alternating.
func TestSessionResumption(t *testing.T) {
	certs, servers := env(t)
	s := servers[1]
	pid, pidErr := matrix.ListenerPID(s.TLSPort)
	for _, tt := range []struct {
		name string
		opts []sslconn.Option
		min  int // connections resumed out of churnConns, at least
	}{
		{"default", nil, churnConns - 1},
		{"no-cache", []sslconn.Option{sslconn.WithSessionCache(nil)}, 0},
		{"default", nil, churnConns - 1},
		{"no-cache", []sslconn.Option{sslconn.WithSessionCache(nil)}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var resumed, handshakes atomic.Int64
			opts := append([]sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA),
				core.WithObserver(func(_ string, cs tls.ConnectionState) {
					handshakes.Add(1)
					if cs.DidResume {
						resumed.Add(1)
					}
				})}, tt.opts...)
			c, err := NewClientFromOptions(&redis.Options{Addr: fmt.Sprintf("localhost:%d", s.TLSPort), Password: testenv.RedisPassword,
				PoolSize: 1, ConnMaxIdleTime: time.Nanosecond,
				MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			serverCPU0, _ := matrix.ProcessCPU(pid)
			cpu0, start := matrix.CPUTime(), time.Now()
			for range churnConns {
				if err := c.Ping(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			cpu, elapsed := matrix.CPUTime()-cpu0, time.Since(start)
			serverCPU := "?"
			if sc, err := matrix.ProcessCPU(pid); err == nil && pidErr == nil {
				serverCPU = ((sc - serverCPU0) / churnConns).Round(time.Microsecond).String()
			}
			t.Logf("churn %s: %d of %d connections resumed (%d handshakes); CPU per connection: client %v, Redis %s; %v per connection in all",
				tt.name, resumed.Load(), churnConns, handshakes.Load(), (cpu / churnConns).Round(time.Microsecond), serverCPU, (elapsed / churnConns).Round(time.Microsecond))
			if got := int(resumed.Load()); got < tt.min || (tt.min == 0 && got != 0) {
				t.Errorf("%d of %d connections resumed, want at least %d", got, churnConns, tt.min)
			}
		})
	}
}
