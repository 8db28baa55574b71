package mssqlssl

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// BenchmarkRecovery: REQUIRED through mssqlssl against bare go-mssqldb with
// encrypt=true&TrustServerCertificate=true, across restarts of the TDS test
// server.
//
//	go test -run '^$' -bench Recovery -benchtime 5x ./mssqlssl
func BenchmarkRecovery(b *testing.B) {
	certs := serverCerts.Get(b)
	conf := serverConfig(testenv.Scenario(certs, 1))
	s, err := tdsserver.Start(conf)
	if err != nil {
		b.Fatal(err)
	}
	defer testenv.Stop(b, "the TDS server", s.Stop)
	stop := s.Stop
	start := func() error { return s.Listen(conf) }
	ping := func(db *sql.DB) func(context.Context) error {
		return func(ctx context.Context) error { var one int; return db.QueryRowContext(ctx, "SELECT 1").Scan(&one) }
	}
	b.Run("sslconn", func(b *testing.B) {
		db, err := Open(urlDSN(s, "localhost", ""), sslconn.WithMode(sslconn.Required))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port()), stop, start, ping(db))
	})
	b.Run("bare", func(b *testing.B) {
		c, err := mssql.NewConnector(fmt.Sprintf("sqlserver://%s:%s@localhost:%d?encrypt=true&TrustServerCertificate=true", user, password, s.Port()))
		if err != nil {
			b.Fatal(err)
		}
		db := sql.OpenDB(c)
		defer db.Close()
		matrix.BenchRecovery(b, testenv.Addr(s.Port()), stop, start, ping(db))
	})
}
