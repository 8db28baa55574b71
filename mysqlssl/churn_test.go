package mysqlssl

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestSessionResumption: a pool whose connections are replaced one after
// another resumes its TLS sessions with the default session cache (see
// matrix.RunChurn). MariaDB 10.11's Ssl_sessions_reused, asked on each
// connection and logged beside, says 0 even for a bare go-sql-driver
// connection that resumed (TLS 1.2 and 1.3 alike), while openssl s_client
// reports its sessions reused: the client's DidResume is the evidence.
func TestSessionResumption(t *testing.T) {
	env := scenarios.Get(t)
	s := env.servers[1]
	matrix.RunChurn(t, matrix.Churn{Server: "MariaDB", Port: s.Port,
		Open: func(t *testing.T, opts []sslconn.Option) (func(context.Context) error, func() string) {
			c, err := NewConnector(dsn(testenv.MySQLUser, testenv.MySQLPassword, "localhost", s.Port, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+env.certs.CA), opts...)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			t.Cleanup(func() { db.Close() })
			db.SetMaxIdleConns(0) // every connection closed after use: churn
			reused := 0
			op := func(ctx context.Context) error {
				var name string
				var v int
				err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_sessions_reused'").Scan(&name, &v)
				reused += v
				return err
			}
			return op, func() string { return fmt.Sprintf("MariaDB's Ssl_sessions_reused: %d", reused) }
		}})
}
