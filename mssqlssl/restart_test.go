package mssqlssl

import (
	"context"
	"database/sql"
	"strconv"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

type mssqlWorkload struct{ db *sql.DB }

// Write sends a plain batch (the test server answers batches, not RPCs).
func (w mssqlWorkload) Write(ctx context.Context, id int64) error {
	_, err := w.db.ExecContext(ctx, "INSERT INTO writes (id) VALUES ("+strconv.FormatInt(id, 10)+")")
	return err
}

func (w mssqlWorkload) Read(ctx context.Context) error {
	var one int
	return w.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func (w mssqlWorkload) Count(ctx context.Context) (map[int64]int, error) {
	rows, err := w.db.QueryContext(ctx, "SELECT id FROM writes")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[int64]int{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		counts[id]++
	}
	return counts, rows.Err()
}

// OutcomeUnknown: go-mssqldb returns driver.ErrBadConn (database/sql's
// retry) only for a request it could not send; one whose connection broke
// while it read the answer comes back as the read's network error, which
// mssqlssl passes on. That is the driver's equivalent of
// sslconn.ErrOutcomeUnknown (matrix.LostAfterSent).
func (mssqlWorkload) OutcomeUnknown(err error) bool { return matrix.LostAfterSent(err) }

func (w mssqlWorkload) Status(ctx context.Context) (sslconn.Status, error) { return Verify(ctx, w.db) }
func (w mssqlWorkload) Close() error                                       { return w.db.Close() }

// TestRestarts: a workload rides out every SSL-triggered restart of the TDS
// test server, which keeps its one table across restarts; see
// matrix.RunRestarts.
func TestRestarts(t *testing.T) {
	certs := serverCerts.Get(t)
	s, err := tdsserver.Start(serverConfig(testenv.TLS{Off: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(t, "the TDS server", s.Stop)
	open := func(mode sslconn.Mode, ca string) (matrix.Workload, error) {
		db, err := Open(urlDSN(s, "localhost", ""), sslconn.WithMode(mode), sslconn.WithCAFile(ca))
		if err != nil {
			return nil, err
		}
		return mssqlWorkload{db}, nil
	}
	matrix.RunRestarts(t, certs, false, open,
		s.Stop,
		func(to testenv.TLS) error { return s.Listen(serverConfig(to)) })
}
