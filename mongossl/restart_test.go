package mongossl

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

type mongoWorkload struct{ c *mongo.Client }

func (w mongoWorkload) coll() *mongo.Collection {
	return w.c.Database("sslconn_test").Collection("writes")
}

// Write inserts a document carrying the id in a field with no unique
// index, so a write applied twice shows twice.
func (w mongoWorkload) Write(ctx context.Context, id int64) error {
	_, err := w.coll().InsertOne(ctx, bson.D{{Key: "w", Value: id}})
	return err
}

func (w mongoWorkload) Read(ctx context.Context) error {
	err := w.coll().FindOne(ctx, bson.D{{Key: "w", Value: -1}}).Err()
	if err == mongo.ErrNoDocuments {
		return nil
	}
	return err
}

func (w mongoWorkload) Count(ctx context.Context) (map[int64]int, error) {
	cur, err := w.coll().Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	counts := map[int64]int{}
	for cur.Next(ctx) {
		var doc struct {
			W int64 `bson:"w"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		counts[doc.W]++
	}
	return counts, cur.Err()
}

// OutcomeUnknown: the driver reports a write whose connection broke after
// it was sent (and whose one retryable-write retry, if any, failed too) as
// a network error (mongo.IsNetworkError: "connection(...) incomplete read
// of message header: ..."), which mongossl passes on: the driver's
// documented equivalent of sslconn.ErrOutcomeUnknown.
//
// FerretDB, the test server, also ends the operations under way while it
// shuts down (its stop takes about 3 s) with a server error of its own
// carrying its cancelled context ("(MaxTimeMSExpired) ... context deadline
// exceeded", "(InternalError) ... context canceled"); a real MongoDB answers
// InterruptedAtShutdown, which the driver retries. Those count too: still
// only for an operation in flight at the stop.
func (mongoWorkload) OutcomeUnknown(err error) bool {
	if mongo.IsNetworkError(err) {
		return true
	}
	var ce mongo.CommandError
	return errors.As(err, &ce) &&
		(strings.Contains(ce.Message, "context canceled") || strings.Contains(ce.Message, "context deadline exceeded"))
}

func (w mongoWorkload) Status(ctx context.Context) (sslconn.Status, error) { return Verify(ctx, w.c) }
func (w mongoWorkload) Close() error                                       { return w.c.Disconnect(context.Background()) }

// TestRestarts: a workload rides out every SSL-triggered restart; see
// matrix.RunRestarts. The driver's own retryable reads and writes stay on.
func TestRestarts(t *testing.T) {
	certs, s := startOwn(t, func(*testenv.Certs) testenv.TLS { return testenv.TLS{Off: true} })
	open := func(mode sslconn.Mode, ca string) (matrix.Workload, error) {
		c, err := Connect(context.Background(), mongoURI("localhost", s.Port, ""), sslconn.WithMode(mode), sslconn.WithCAFile(ca))
		if err != nil {
			return nil, err
		}
		return mongoWorkload{c}, nil
	}
	matrix.RunRestarts(t, certs, true, open, s.Stop,
		func(to testenv.TLS) error { s.TLS = to; return s.Start() })
}
