package mysqlssl

import (
	"database/sql/driver"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// TestCloseStopsConnects: closing the *sql.DB stops the connector's
// retries at once, and nothing outlives it (matrix.RunCloseStops).
func TestCloseStopsConnects(t *testing.T) {
	matrix.RunCloseStops(t, func(addr string, opts ...sslconn.Option) (driver.Connector, error) {
		return NewConnector("app:pw@tcp("+addr+")/db", opts...)
	})
}
