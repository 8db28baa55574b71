package mongossl

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mongotest"
	"github.com/sslconn/sslconn/internal/testkit/netns"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestSilentPrimary: a primary that goes silent in a failover (see
// matrix.RunSilent). FerretDB has no long-running command: the frozen
// server stands for a slow one.
func TestSilentPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("needs servers")
	}
	matrix.RunSilent(t, mongotest.Certs(t), matrix.Silent{
		Start: func(h *netns.Host, tls testenv.TLS) (matrix.SilentServer, error) {
			s, err := testenv.StartFerretDBOn(h, tls)
			if err != nil {
				return nil, err
			}
			return matrix.ProcessServer{Server: s, PortFor: func(s *testenv.Server, mode sslconn.Mode) int {
				return matrix.PortFor(1, s, mode)
			}}, nil
		},
		Open: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			c, err := Connect(context.Background(), "mongodb://"+addr+"/?directConnection=true", sslconn.WithMode(mode))
			if err != nil {
				return nil, err
			}
			return mongoWorkload{c}, nil
		},
		Modes:     []sslconn.Mode{sslconn.Disabled, sslconn.Required},
		IdleExtra: 3 * time.Second, // the monitor's connect to the old address (seen: 3.9 s once under load)
		// A write that takes a reset or retired connection before the close
		// ping has the driver clear its pool fails unsent: mongo-driver
		// retries no write against a standalone server.
		UnsentErrors: 2,
		// The bare driver: tlsInsecure is its REQUIRED.
		OpenBare: func(mode sslconn.Mode, addr string) (matrix.Workload, error) {
			uri := "mongodb://" + addr + "/?directConnection=true"
			if mode != sslconn.Disabled {
				uri += "&tls=true&tlsInsecure=true"
			}
			o := options.Client().ApplyURI(uri)
			c, err := mongo.Connect(o) //v1:replace mongo.Connect(o) => mongo.Connect(context.Background(), o)
			if err != nil {
				return nil, err
			}
			return mongoWorkload{c}, nil
		},
	})
}
