package mongossl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mongotest"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The servers and certificates are mongotest's, which the tests of both
// adapters use: one FerretDB per scenario S0-S7 started on first use, a
// mutual-TLS one, and startOwn for the tests that restart theirs.
var (
	scenarios = mongotest.Scenarios
	mutualTLS = mongotest.MutualTLS
	startOwn  = mongotest.StartOwn
	mongoURI  = mongotest.URI
	shortPKI  = mongotest.ShortPKI
)

// TestMain starts no server: the tests that need one start it on first use
// (see scenarios), and -short runs only those that need none.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

// result connects, inserts and finds a document, and reports "plain",
// "TLS" or the sentinel, with the server port the connection reached.
func result(t *testing.T, uri string, opts ...sslconn.Option) (string, sslconn.Status, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, uri, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, opts...)...)
	if err != nil {
		return matrix.Kind(err), sslconn.Status{}, 0, err
	}
	defer c.Disconnect(context.Background())
	coll := c.Database("sslconn_test").Collection(strings.ReplaceAll(t.Name(), "/", "_"))
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		return matrix.Kind(err), sslconn.Status{}, 0, err
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "x", Value: 1}}).Err(); err != nil {
		return matrix.Kind(err), sslconn.Status{}, 0, err
	}
	st, port, err := verifyWithPort(ctx, c)
	if err != nil {
		return matrix.Kind(err), st, 0, err
	}
	if st.Encrypted {
		return "TLS", st, port, nil
	}
	return "plain", st, port, nil
}

// verifyWithPort is Verify plus the server port of the connection it found.
func verifyWithPort(ctx context.Context, c *mongo.Client) (sslconn.Status, int, error) {
	p := core.NewProbe()
	defer p.Close()
	if err := c.Database(p.Token()).RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return sslconn.Status{}, 0, err
	}
	conn, ok := p.Conn()
	if !ok {
		return sslconn.Status{}, 0, fmt.Errorf("no connection carried the probe")
	}
	return conn.Status(), conn.RemoteAddr().(*net.TCPAddr).Port, nil
}

func TestMatrix(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	want := matrix.Want()
	for sc, s := range servers {
		for _, mode := range core.Modes {
			t.Run(testenv.ScenarioNames[sc]+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				port := matrix.PortFor(sc, s, mode)
				start := time.Now()
				got, st, reached, err := result(t, mongoURI("localhost", port, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA))
				if got != want[sc][mode] {
					t.Fatalf("got %s (%+v %v), want %s", got, st, err, want[sc][mode])
				}
				if err != nil {
					matrix.CheckErrorText(t, err, mode, "localhost", "")
					// Errors surface fast and true, not after a 30 s server selection.
					if d := time.Since(start); d > 10*time.Second {
						t.Errorf("error took %v", d)
					}
					return
				}
				if reached != port {
					t.Fatalf("reached port %d, dialled %d", reached, port)
				}
			})
		}
	}
}

func TestCAFormats(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	for name, ca := range matrix.CAFiles(certs) {
		t.Run(name, func(t *testing.T) {
			got, _, _, err := result(t, mongoURI("localhost", servers[1].TLSPort, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+ca))
			if got != "TLS" {
				t.Fatalf("%s %v", got, err)
			}
		})
	}
}

// TestModeFromURI: the driver's own TLS options, with
// tlsAllowInvalidHostnames doing what it says.
func TestModeFromURI(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	tests := []struct {
		name   string
		server int
		params string
		want   string
	}{
		{"tls=true verifies the host", 3, "tls=true&tlsCAFile=" + certs.CA, sslconn.ErrHostnameMismatch.Error()},
		{"tlsCAFile alone means tls=true", 3, "tlsCAFile=" + certs.CA, sslconn.ErrHostnameMismatch.Error()},
		{"tlsCAFile as JKS", 1, "tls=true&tlsCAFile=" + certs.JKS, "TLS"},
		{"tlsAllowInvalidHostnames is VERIFY_CA", 3, "tls=true&tlsAllowInvalidHostnames=true&tlsCAFile=" + certs.CA, "TLS"},
		{"tlsAllowInvalidHostnames still checks the chain", 4, "tls=true&tlsAllowInvalidHostnames=true&tlsCAFile=" + certs.CA, sslconn.ErrUnknownAuthority.Error()},
		{"tlsInsecure is REQUIRED", 4, "tls=true&tlsInsecure=true", "TLS"},
		{"nothing is PREFERRED", 4, "", "TLS"},
		{"ssl-ca alone is VERIFY_CA", 3, "ssl-ca=" + certs.CA, "TLS"},
		{"explicit mode beats tls=true", 3, "tls=true&ssl-mode=VERIFY_CA&ssl-ca=" + certs.CA, "TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _, err := result(t, mongoURI("localhost", servers[tt.server].TLSPort, tt.params))
			if got != tt.want {
				t.Fatalf("%s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestBadURI(t *testing.T) {
	certs := shortPKI(t) // no server, and no gencerts.sh, so it runs under -short
	const pw = "Uri-Secret-55"
	tests := []struct{ name, uri, says string }{
		{"unknown mode", "mongodb://u:" + pw + "@localhost:27017/?ssl-mode=VERIFY", "VERIFY_IDENTITY"},
		{"tls=false with an encrypting mode", "mongodb://u:" + pw + "@localhost:27017/?tls=false&ssl-mode=REQUIRED", "ssl-mode"},
		{"bad scheme", "mysql://u:" + pw + "@localhost:27017", "mongodb://"},
		{"bad tls value", "mongodb://u:" + pw + "@localhost/?tls=maybe", "tls=maybe"},
		{"encrypted key, wrong password", "mongodb://u:" + pw + "@localhost/?tlsCertificateFile=" + certs.Client.Cert + "&tlsPrivateKeyFile=" + certs.ClientKeyPKCS8 + "&tlsCertificateKeyFilePassword=" + pw, "decrypt"},
		{"missing CA", "mongodb://u:" + pw + "@localhost/?ssl-ca=/nonexistent.pem", "ssl-ca"},
		{"driver rejects an option", "mongodb://u:" + pw + "@localhost/?maxPoolSize=lots", "invalid MongoDB URI"},
		{"both revocation options (the driver's rule)", "mongodb://u:" + pw + "@localhost/?tlsDisableOCSPEndpointCheck=true&tlsDisableCertificateRevocationCheck=true", "tlsDisableOCSPEndpointCheck cannot be used with tlsDisableCertificateRevocationCheck"},
		{"tlsInsecure and a revocation option (the driver's rule)", "mongodb://u:" + pw + "@localhost/?tlsInsecure=true&tlsDisableCertificateRevocationCheck=true", "tlsInsecure cannot be used with tlsDisableCertificateRevocationCheck"},
		{"bad revocation option value", "mongodb://u:" + pw + "@localhost/?tlsDisableOCSPEndpointCheck=maybe", "tlsDisableOCSPEndpointCheck=maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientOptions(tt.uri)
			matrix.CheckBadInput(t, err, tt.says, pw)
		})
	}
}

// TestMutualTLS: FerretDB with a CA requires client certificates.
func TestMutualTLS(t *testing.T) {
	env := mutualTLS.Get(t)
	certs, s := env.Certs, env.S
	base := "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA
	if got, _, _, err := result(t, mongoURI("localhost", s.TLSPort, base+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.Client.Key)); got != "TLS" {
		t.Fatalf("with ssl-cert: %s %v", got, err)
	}
	pemFile := t.TempDir() + "/client.pem"
	cert, _ := os.ReadFile(certs.Client.Cert)
	key, _ := os.ReadFile(certs.Client.Key)
	os.WriteFile(pemFile, append(cert, key...), 0o600)
	if got, _, _, err := result(t, mongoURI("localhost", s.TLSPort, base+"&tlsCertificateKeyFile="+pemFile)); got != "TLS" {
		t.Fatalf("with tlsCertificateKeyFile: %s %v", got, err)
	}
	got, _, _, err := result(t, mongoURI("localhost", s.TLSPort, base))
	if got != sslconn.ErrClientCertRequired.Error() {
		t.Fatalf("without: %s %v", got, err)
	}
}

// TestReplicaSetHosts: several seed hosts, each dialled and verified in the
// same mode; one unreachable seed does not stop the client.
func TestReplicaSetHosts(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	dead, _ := testenv.FreePort()
	uri := fmt.Sprintf("mongodb://127.0.0.1:%d,localhost:%d/?ssl-mode=VERIFY_IDENTITY&ssl-ca=%s", dead, servers[1].TLSPort, certs.CA)
	co, err := ClientOptions(uri)
	if err != nil {
		t.Fatal(err)
	}
	if len(co.Hosts) != 2 {
		t.Fatalf("hosts %v", co.Hosts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := core.Resolve(core.Spec{}, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := preflight(ctx, &dialer{Cfg: cfg}, co.Hosts); err != nil {
		t.Fatalf("preflight with one live seed: %v", err)
	}
}

// TestPreferredAfterEnablingSSL: PREFERRED connections are encrypted once
// the endpoint is restarted with TLS, riding out the restart.
func TestPreferredAfterEnablingSSL(t *testing.T) {
	certs, s := startOwn(t, func(c *testenv.Certs) testenv.TLS { return testenv.Scenario(c, 0) })
	ctx := context.Background()
	c, err := Connect(ctx, mongoURI("localhost", s.Port, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	if st, err := Verify(ctx, c); err != nil || st.Encrypted {
		t.Fatalf("before: %+v %v", st, err)
	}
	tlsOn := testenv.Scenario(certs, 1)
	tlsOn.OnPlainPort = true
	if err := s.Restart(tlsOn); err != nil {
		t.Fatal(err)
	}
	var st sslconn.Status
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st, err = Verify(ctx, c); err == nil && st.Encrypted {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !st.Encrypted {
		t.Fatalf("after: %+v %v", st, err)
	}
}
