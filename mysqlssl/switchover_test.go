package mysqlssl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func writerDSN(port int, params string) string {
	return dsn(testenv.MySQLWriter, testenv.MySQLWriterPassword, "localhost", port, params)
}

// TestSwitchover: a workload rides out planned primary/secondary
// switchovers (enable SSL, certificate update, the endpoint moving without
// cutting old connections); see matrix.RunSwitchovers for what is checked.
func TestSwitchover(t *testing.T) {
	certs := certsForServers.Get(t)
	matrix.RunSwitchovers(t, certs, func(mode sslconn.Mode, port int) (matrix.Workload, error) {
		db, err := Open(writerDSN(port, ""), sslconn.WithMode(mode), sslconn.WithCAFile(certs.CA))
		if err != nil {
			return nil, err
		}
		return mysqlWorkload{db}, nil
	})
}

// TestReadOnlyRefusal: against a read-only node that stays read-only, a
// write fails with the server's error once the context ends, the pool
// keeps serving reads, and with rejectReadOnly=false the refusal comes
// back at once, as with the bare driver.
func TestReadOnlyRefusal(t *testing.T) {
	certsForServers.Get(t) // skips with -short
	r, err := testenv.StartReplication(testenv.TLS{Off: true}, testenv.TLS{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(t, "the replication pair", r.Stop)
	if err := r.SetReadOnly(); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO writes (id) VALUES (1)"
	for _, tc := range []struct {
		params string
		wait   bool
	}{{"", true}, {"rejectReadOnly=false", false}} {
		t.Run("params="+tc.params, func(t *testing.T) {
			db, err := Open(writerDSN(r.Primary.Port, tc.params), sslconn.WithMode(sslconn.Disabled))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = db.ExecContext(ctx, insert)
			took := time.Since(start)
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1290 {
				t.Fatalf("got %v, want the server's 1290", err)
			}
			if tc.wait != (took >= 500*time.Millisecond) {
				t.Errorf("the refusal took %v (waiting for a writable node: %t)", took, tc.wait)
			}
			var one int
			if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
				t.Errorf("a read on the read-only node: %v", err)
			}
		})
	}
}

// BenchmarkSwitchover: the time from the new primary being reachable
// through the endpoint to the first successful write, REQUIRED through
// mysqlssl against the bare driver (tls=skip-verify, and with its own
// rejectReadOnly=true), the application retrying failed writes every 10 ms.
//
//	go test -run '^$' -bench Switchover -benchtime 5x ./mysqlssl
func BenchmarkSwitchover(b *testing.B) {
	certs := certsForServers.Get(b)
	tls := testenv.Scenario(certs, 1)
	insert := func(db *sql.DB) func(context.Context, int64) error {
		return func(ctx context.Context, id int64) error {
			_, err := db.ExecContext(ctx, "INSERT INTO writes (id) VALUES (?)", id)
			return err
		}
	}
	run := func(b *testing.B, open func(port int) (*sql.DB, error)) {
		r, err := testenv.StartReplication(tls, tls)
		if err != nil {
			b.Fatal(err)
		}
		defer testenv.Stop(b, "the replication pair", r.Stop)
		fwd, err := testenv.StartForwarder(testenv.Addr(r.Primary.Port))
		if err != nil {
			b.Fatal(err)
		}
		defer testenv.Stop(b, "the forwarder", fwd.Close)
		db, err := open(fwd.Port)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		matrix.BenchSwitchover(b, r, fwd, insert(db))
	}
	bare := func(params string) func(int) (*sql.DB, error) {
		return func(port int) (*sql.DB, error) {
			return sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(localhost:%d)/%s?tls=skip-verify%s",
				testenv.MySQLWriter, testenv.MySQLWriterPassword, port, testenv.MySQLDatabase, params))
		}
	}
	b.Run("sslconn", func(b *testing.B) {
		run(b, func(port int) (*sql.DB, error) { return Open(writerDSN(port, ""), sslconn.WithMode(sslconn.Required)) })
	})
	b.Run("bare", func(b *testing.B) { run(b, bare("")) })
	b.Run("bare-rejectReadOnly", func(b *testing.B) { run(b, bare("&rejectReadOnly=true")) })
}
