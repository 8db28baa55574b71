package mysqlssl

import (
	"context"
	"database/sql"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

type mysqlWorkload struct{ db *sql.DB }

func (w mysqlWorkload) Write(ctx context.Context, id int64) error {
	_, err := w.db.ExecContext(ctx, "INSERT INTO writes (id) VALUES (?)", id)
	return err
}

func (w mysqlWorkload) Read(ctx context.Context) error {
	var one int
	return w.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func (w mysqlWorkload) Count(ctx context.Context) (map[int64]int, error) {
	rows, err := w.db.QueryContext(ctx, "SELECT id, COUNT(*) FROM writes GROUP BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		counts[id] = n
	}
	return counts, rows.Err()
}

func (w mysqlWorkload) Status(ctx context.Context) (sslconn.Status, error) { return Verify(ctx, w.db) }
func (w mysqlWorkload) Close() error                                       { return w.db.Close() }

// TestRestarts: a workload rides out every SSL-triggered restart; see
// matrix.RunRestarts for what is checked.
func TestRestarts(t *testing.T) {
	certs := certsForServers.Get(t)
	s, err := testenv.StartMariaDB(testenv.TLS{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	// No primary key: a write applied twice shows as two rows.
	if out, err := s.MySQL("CREATE TABLE " + testenv.MySQLDatabase + ".writes (id BIGINT NOT NULL)"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	open := func(mode sslconn.Mode, ca string) (matrix.Workload, error) {
		db, err := Open(appDSN(s, "localhost", ""), sslconn.WithMode(mode), sslconn.WithCAFile(ca))
		if err != nil {
			return nil, err
		}
		return mysqlWorkload{db}, nil
	}
	matrix.RunRestarts(t, certs, false, open, s.Stop,
		func(to testenv.TLS) error { s.TLS = to; return s.Start() })
}
