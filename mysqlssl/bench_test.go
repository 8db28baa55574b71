package mysqlssl

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// BenchmarkRecovery: REQUIRED through mysqlssl against the bare driver with
// tls=skip-verify, across restarts of a TLS server.
//
//	go test -run '^$' -bench Recovery -benchtime 5x ./mysqlssl
func BenchmarkRecovery(b *testing.B) {
	certs := certsForServers.Get(b)
	s, err := testenv.StartMariaDB(testenv.Scenario(certs, 1))
	if err != nil {
		b.Fatal(err)
	}
	restart := func() error { return s.Start() }
	ping := func(db *sql.DB) func(context.Context) error {
		return func(ctx context.Context) error { var one int; return db.QueryRowContext(ctx, "SELECT 1").Scan(&one) }
	}
	b.Run("sslconn", func(b *testing.B) {
		db, err := Open(appDSN(s, "localhost", ""), sslconn.WithMode(sslconn.Required))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, restart, ping(db))
	})
	b.Run("bare", func(b *testing.B) {
		db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(localhost:%d)/%s?tls=skip-verify", testenv.MySQLUser, testenv.MySQLPassword, s.Port, testenv.MySQLDatabase))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port), s.Stop, restart, ping(db))
	})
}
