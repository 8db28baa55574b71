package matrix

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// churnConns is how many connections a churn run replaces.
const churnConns = 100

// Churn is one engine's part in RunChurn.
type Churn struct {
	// Server names the server in the log ("MariaDB", "Redis"); Port is
	// the port it listens on, to find its process for its CPU.
	Server string
	Port   int
	// Open makes a client, with opts (VERIFY_IDENTITY is the client's to
	// set), each of whose operations runs on a new connection; detail,
	// if not nil, adds to the log what the server says of resumption.
	// The client is closed when t ends.
	Open func(t *testing.T, opts []sslconn.Option) (op func(context.Context) error, detail func() string)
}

// RunChurn replaces churnConns connections one after another (steady
// churn: a connection lifetime, workers restarting) with the library's
// default session cache and with none, twice each, alternating. With the
// cache all but the first resume their TLS session; without it none does.
// The client's word (DidResume) is the evidence. The CPU per connection,
// the test process's and the server's, is logged for scripts/bench.sh.
func RunChurn(t *testing.T, c Churn) {
	pid, pidErr := ListenerPID(c.Port)
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
			opts := append(tt.opts, core.WithObserver(func(_ string, cs tls.ConnectionState) {
				handshakes.Add(1)
				if cs.DidResume {
					resumed.Add(1)
				}
			}))
			op, detail := c.Open(t, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			serverCPU0, _ := ProcessCPU(pid)
			cpu0, start := CPUTime(), time.Now()
			for range churnConns {
				if err := op(ctx); err != nil {
					t.Fatal(err)
				}
			}
			cpu, elapsed := CPUTime()-cpu0, time.Since(start)
			serverCPU := "?"
			if sc, err := ProcessCPU(pid); err == nil && pidErr == nil {
				serverCPU = ((sc - serverCPU0) / churnConns).Round(time.Microsecond).String()
			}
			extra := ""
			if detail != nil {
				extra = "; " + detail()
			}
			t.Logf("churn %s: %d of %d connections resumed (%d handshakes%s); CPU per connection: client %v, %s %s; %v per connection in all",
				tt.name, resumed.Load(), churnConns, handshakes.Load(), extra, (cpu / churnConns).Round(time.Microsecond), c.Server, serverCPU, (elapsed / churnConns).Round(time.Microsecond))
			if got := int(resumed.Load()); got < tt.min || (tt.min == 0 && got != 0) {
				t.Errorf("%d of %d connections resumed, want at least %d", got, churnConns, tt.min)
			}
		})
	}
}
