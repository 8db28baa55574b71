package mysqlssl

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

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
	matrix.RunSilent(t, certsForServers.Get(t), matrix.Silent{
		Start: func(h *netns.Host, tls testenv.TLS) (matrix.SilentServer, error) {
			s, err := testenv.StartMariaDBOn(h, tls)
			if err != nil {
				return nil, err
			}
			// No primary key: a write applied twice shows as two rows.
			if out, err := s.MySQL("CREATE TABLE " + testenv.MySQLDatabase + ".writes (id BIGINT NOT NULL)"); err != nil {
				s.Stop()
				return nil, fmt.Errorf("create table: %v: %s", err, out)
			}
			return matrix.ProcessServer{Server: s, PortFor: func(s *testenv.Server, _ sslconn.Mode) int { return s.Port }}, nil
		},
		Open: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			db, err := Open(appDSNAt(addr, ""), sslconn.WithMode(mode))
			if err != nil {
				return nil, err
			}
			return mysqlWorkload{db}, nil
		},
		Long: func(ctx context.Context, w matrix.Workload, d time.Duration) error {
			_, err := w.(mysqlWorkload).db.ExecContext(ctx, "DO SLEEP(?)", d.Seconds())
			return err
		},
		// The bare driver: tls=skip-verify is its REQUIRED.
		OpenBare: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			tls := "skip-verify"
			if mode == sslconn.Disabled {
				tls = "false"
			}
			db, err := sql.Open("mysql", appDSNAt(addr, "tls="+tls))
			if err != nil {
				return nil, err
			}
			return mysqlWorkload{db}, nil
		},
		Modes: []sslconn.Mode{sslconn.Disabled, sslconn.Required},
	})
}
