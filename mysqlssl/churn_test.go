package mysqlssl

import (
	"context"
	"crypto/tls"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// churnConns is how many connections a churn run replaces.
const churnConns = 100

// TestSessionResumption: a pool whose connections are replaced one after
// another (steady churn: a connection lifetime, workers restarting)
// resumes its TLS sessions with the library's default session cache;
// without a cache nothing resumes. The client's word (DidResume) is the
// evidence: MariaDB 10.11's Ssl_sessions_reused, asked on each
// connection, says 0 even for a bare go-sql-driver connection that
// resumed (TLS 1.2 and 1.3 alike), while openssl s_client reports its
// sessions reused. The CPU per connection, the process's and the
// server's, is logged for both, twice each, alternating.
func TestSessionResumption(t *testing.T) {
	env := scenarios.Get(t)
	s := env.servers[1]
	pid, pidErr := matrix.ListenerPID(s.Port)
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
			var resumed atomic.Int64
			opts := append(tt.opts, core.WithObserver(func(_ string, cs tls.ConnectionState) {
				if cs.DidResume {
					resumed.Add(1)
				}
			}))
			c, err := NewConnector(dsn(testenv.MySQLUser, testenv.MySQLPassword, "localhost", s.Port, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+env.certs.CA), opts...)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			db.SetMaxIdleConns(0) // every connection closed after use: churn
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			server := 0
			serverCPU0, _ := matrix.ProcessCPU(pid)
			cpu0, start := matrix.CPUTime(), time.Now()
			for range churnConns {
				var name string
				var v int
				if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_sessions_reused'").Scan(&name, &v); err != nil {
					t.Fatal(err)
				}
				server += v
			}
			cpu, elapsed := matrix.CPUTime()-cpu0, time.Since(start)
			serverCPU := "?"
			if sc, err := matrix.ProcessCPU(pid); err == nil && pidErr == nil {
				serverCPU = ((sc - serverCPU0) / churnConns).Round(time.Microsecond).String()
			}
			t.Logf("churn %s: %d of %d connections resumed (MariaDB's Ssl_sessions_reused: %d); CPU per connection: client %v, MariaDB %s; %v per connection in all",
				tt.name, resumed.Load(), churnConns, server, (cpu / churnConns).Round(time.Microsecond), serverCPU, (elapsed / churnConns).Round(time.Microsecond))
			if got := int(resumed.Load()); got < tt.min || (tt.min == 0 && got != 0) {
				t.Errorf("%d of %d connections resumed, want at least %d", got, churnConns, tt.min)
			}
		})
	}
}
