package mongossl

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestFirstOperationAfterRestart: on an idle client, the first operation
// after the server restarts succeeds, including those the driver never
// retries (Ping and any RunCommand, a write to a standalone), whether it
// starts while the server is down (as in BenchmarkRecovery) or once it is
// back. Without ping.go the client learns of the restart only from that
// operation, which fails on a dead pooled connection. The user's command
// and pool monitors keep working and see no ping of ours; every write is
// there exactly once.
//
// The operation starts once the client has seen the server go (its pool
// cleared, a millisecond after the server closed the connections): one
// started in that millisecond, as the server goes, may still fail once
// (see ping.go), and would make the test flaky.
func TestFirstOperationAfterRestart(t *testing.T) {
	_, s := startOwn(t, func(c *testenv.Certs) testenv.TLS {
		conf := testenv.Scenario(c, 1)
		conf.OnPlainPort = true
		return conf
	})
	co, err := ClientOptions(mongoURI("localhost", s.Port, ""), sslconn.WithMode(sslconn.Required))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		started = map[string]int{} // command name -> Started events the user saw
		cleared atomic.Int32
	)
	co.Monitor = &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		started[e.CommandName]++
		mu.Unlock()
	}}
	co.PoolMonitor = &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		if e.Type == event.ConnectionPoolCleared { //v1:replace ConnectionPoolCleared => PoolCleared
			cleared.Add(1)
		}
	}}
	ctx := context.Background()
	c, err := ConnectOptions(ctx, co)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	coll := c.Database("sslconn_test").Collection("first_op")
	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}

	var id atomic.Int64
	pings := 0 // the application's
	ops := []struct {
		name string
		do   func(context.Context) error
	}{
		{"Ping", func(ctx context.Context) error { pings++; return c.Ping(ctx, nil) }},
		{"RunCommand-insert", func(ctx context.Context) error {
			return c.Database("sslconn_test").RunCommand(ctx, bson.D{
				{Key: "insert", Value: "first_op"},
				{Key: "documents", Value: bson.A{bson.D{{Key: "w", Value: id.Add(1)}}}},
			}).Err()
		}},
		{"InsertOne", func(ctx context.Context) error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "w", Value: id.Add(1)}})
			return err
		}},
		{"FindOne", func(ctx context.Context) error {
			err := coll.FindOne(ctx, bson.D{{Key: "w", Value: -1}}).Err()
			if err == mongo.ErrNoDocuments {
				return nil
			}
			return err
		}},
	}
	run := func(name string, whileDown bool, do func(context.Context) error) {
		// A pooled connection, idle when the server stops.
		if err := do(ctx); err != nil {
			t.Fatalf("%s before the restart: %v", name, err)
		}
		before := cleared.Load()
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		when := map[bool]string{true: "started while the server was down", false: "after the server was back"}[whileDown]
		// The client sees the server go by itself, with no operation
		// (otherwise only at the next heartbeat, 10 s on).
		for deadline := time.Now().Add(5 * time.Second); cleared.Load() == before && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if cleared.Load() == before {
			t.Errorf("%s %s: the client did not see the server go", name, when)
		}
		started := make(chan error, 1)
		if whileDown {
			go func() { time.Sleep(300 * time.Millisecond); started <- s.Start() }()
		} else if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		err := do(octx)
		cancel()
		if whileDown {
			if err := <-started; err != nil {
				t.Fatal(err)
			}
		}
		if err != nil {
			t.Errorf("%s %s: the first operation after the restart failed: %v", name, when, err)
		}
	}
	for _, op := range ops {
		run(op.name, true, op.do)
	}
	for _, op := range ops[:3] {
		run(op.name, false, op.do)
	}

	// Every write once: none failed, none was sent twice.
	counts := map[int64]int{}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for cur.Next(ctx) {
		var doc struct {
			W int64 `bson:"w"`
		}
		if err := cur.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		counts[doc.W]++
	}
	if err := cur.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for w := int64(1); w <= id.Load(); w++ {
		if counts[w] != 1 {
			t.Errorf("write %d is there %d times", w, counts[w])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if started["ping"] != pings {
		t.Errorf("the command monitor saw %d pings, the application sent %d", started["ping"], pings)
	}
	if started["insert"] == 0 || started["find"] == 0 {
		t.Errorf("the command monitor missed the application's commands: %v", started)
	}
	t.Logf("pool cleared %d times; the user's monitor saw %s", cleared.Load(), fmt.Sprint(started))
}

// TestHidePings: the user's command monitor sees its own commands, not the
// pings live makes; a nil monitor stays nil.
func TestHidePings(t *testing.T) {
	if hidePings(nil) != nil {
		t.Error("a nil monitor became one")
	}
	var started, succeeded, failed int
	m := hidePings(&event.CommandMonitor{
		Started:   func(context.Context, *event.CommandStartedEvent) { started++ },
		Succeeded: func(context.Context, *event.CommandSucceededEvent) { succeeded++ },
		Failed:    func(context.Context, *event.CommandFailedEvent) { failed++ },
	})
	ours := context.WithValue(context.Background(), pingKey{}, true)
	for _, ctx := range []context.Context{context.Background(), ours} {
		m.Started(ctx, &event.CommandStartedEvent{})
		m.Succeeded(ctx, &event.CommandSucceededEvent{})
		m.Failed(ctx, &event.CommandFailedEvent{})
	}
	if started != 1 || succeeded != 1 || failed != 1 {
		t.Errorf("the user saw %d, %d, %d events, want 1 each", started, succeeded, failed)
	}
	if m := hidePings(&event.CommandMonitor{}); m.Started != nil || m.Succeeded != nil || m.Failed != nil {
		t.Error("hidePings added callbacks the user did not set")
	}
}
