package mongossl

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/sslconn/sslconn/mongossl/internal/mongocore"
)

// The live pings (see mongocore/live.go), in v2's types.
//v1:replace v2's types => v1's types

// ping is the client's ping for mongocore.Live. Any server may answer it
// with this read preference: in a replica set it may be another, which is
// harmless.
func ping(c *mongo.Client) mongocore.Ping {
	return func(ctx context.Context) error {
		return c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}},
			options.RunCmd().SetReadPreference(readpref.Nearest())).Err()
	}
}

// hidePings returns m without the events of mongocore.Live's pings (nil
// stays nil): the application's monitors and traces see its own commands
// only.
func hidePings(m *event.CommandMonitor) *event.CommandMonitor {
	if m == nil {
		return nil
	}
	h := *m
	mine := mongocore.IsPing
	if m.Started != nil {
		h.Started = func(ctx context.Context, e *event.CommandStartedEvent) {
			if !mine(ctx) {
				m.Started(ctx, e)
			}
		}
	}
	if m.Succeeded != nil {
		h.Succeeded = func(ctx context.Context, e *event.CommandSucceededEvent) {
			if !mine(ctx) {
				m.Succeeded(ctx, e)
			}
		}
	}
	if m.Failed != nil {
		h.Failed = func(ctx context.Context, e *event.CommandFailedEvent) {
			if !mine(ctx) {
				m.Failed(ctx, e)
			}
		}
	}
	return &h
}
