package mssqlssl

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/netns"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// tdsOnHost is the TDS test server serving from a test host.
type tdsOnHost struct{ *tdsserver.Server }

func (s tdsOnHost) Port(sslconn.Mode) int { return s.Server.Port() }

// TestSilentPrimary: a primary that goes silent in a failover (see
// matrix.RunSilent).
func TestSilentPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("needs network namespaces")
	}
	matrix.RunSilent(t, serverCerts.Get(t), matrix.Silent{
		Start: func(h *netns.Host, tls testenv.TLS) (matrix.SilentServer, error) {
			s, err := tdsserver.StartOn(serverConfig(tls), h.Listen, h.Addr(1433))
			if err != nil {
				return nil, err
			}
			return tdsOnHost{s}, nil
		},
		Open: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			db, err := Open(fmt.Sprintf("sqlserver://%s:%s@%s?database=master", user, password, addr), sslconn.WithMode(mode))
			if err != nil {
				return nil, err
			}
			return mssqlWorkload{db}, nil
		},
		Long: func(ctx context.Context, w matrix.Workload, d time.Duration) error {
			_, err := w.(mssqlWorkload).db.ExecContext(ctx, fmt.Sprintf("WAITFOR DELAY '00:00:%02d'", int(d.Seconds())))
			return err
		},
		Modes: []sslconn.Mode{sslconn.Disabled, sslconn.Required},
		// The bare driver: TrustServerCertificate is its REQUIRED.
		OpenBare: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			enc := "encrypt=true&TrustServerCertificate=true"
			if mode == sslconn.Disabled {
				enc = "encrypt=disable"
			}
			c, err := mssql.NewConnector(fmt.Sprintf("sqlserver://%s:%s@%s?database=master&%s", user, password, addr, enc))
			if err != nil {
				return nil, err
			}
			return mssqlWorkload{sql.OpenDB(c)}, nil
		},
		KeepsMoved: "go-mssqldb resolves the host name itself and dials an address, and has no check at the pool's " +
			"hand-out (go-sql-driver's liveness check) through which a connection could be retired between transactions: " +
			"refusing its next write would fail a transaction in progress",
	})
}
