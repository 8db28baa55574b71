package mongossl

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestVerifyThroughProxy: Verify finds the client's own connection by what
// it carries, not by addresses, so it reports the truth through a TCP
// proxy (or NAT), where the server sees the proxy's address and the client
// the proxy's port.
func TestVerifyThroughProxy(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	tests := []struct {
		name        string
		upstream    int // the real server's port
		upstreamTLS bool
		params      string
		encrypted   bool
	}{
		{"VERIFY_IDENTITY on a TLS port", servers[1].TLSPort, true, "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA, true},
		{"REQUIRED on a forced-TLS port", servers[2].TLSPort, true, "ssl-mode=REQUIRED", true},
		{"PREFERRED on a TLS port", servers[1].TLSPort, true, "", true},
		{"DISABLED on a plaintext port", servers[1].Port, false, "ssl-mode=DISABLED", false},
		{"PREFERRED on a server without TLS", servers[0].Port, false, "ssl-mode=PREFERRED", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := mitm.Start(mitm.Config{Engine: mitm.Mongo, Attack: mitm.Relay, Upstream: testenv.Addr(tt.upstream), UpstreamTLS: tt.upstreamTLS})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// directConnection: the driver talks to the proxy only, not to
			// the hosts the server announces.
			uri := "mongodb://" + p.Addr() + "/?directConnection=true"
			if tt.params != "" {
				uri += "&" + tt.params
			}
			c, err := Connect(ctx, uri, sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(context.Background())
			st, err := Verify(ctx, c)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			matrix.CheckStatus(t, "Verify", st, tt.encrypted)
			matrix.CheckMode(t, "Verify", st, matrix.ParamsMode(tt.params))
			// The connection that carried the probe is the client's own,
			// to the proxy.
			_, port, err := verifyWithPort(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			_, proxyPort, _ := net.SplitHostPort(p.Addr())
			if strconv.Itoa(port) != proxyPort {
				t.Errorf("probe carried by a connection to port %d, not the proxy's %s", port, proxyPort)
			}
			if p.Active() == 0 {
				t.Error("no connection through the proxy")
			}
		})
	}
}
