package redisssl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The servers start on the first test that needs them, once for the
// package, and not at all under -short (see testenv.Lazy). One Redis per
// scenario S0-S7: Redis keeps plaintext and TLS on separate ports, so the
// scenarios map onto ports: DISABLED uses the plaintext port (the non-SSL
// endpoint), or the TLS port where the server has no other (S2, TLS
// forced); the modes that encrypt use the TLS port, or the plaintext port
// of S0, the server without TLS.
var (
	// lazyCerts are the test certificates; every test that needs a server
	// needs them, so they skip under -short as the servers do.
	lazyCerts = testenv.NewLazy(newCerts)
	scenarios = testenv.NewLazy(func() ([8]*testenv.Server, error) {
		c, err := newCerts()
		if err != nil {
			return [8]*testenv.Server{}, err
		}
		return matrix.StartScenarios(c, testenv.StartRedis)
	})
	// lazyCluster is a three-node TLS cluster, only read from (TestCluster).
	lazyCluster = testenv.NewLazy(func() ([]*testenv.Server, error) {
		c, err := newCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartRedisCluster(3, testenv.Scenario(c, 1), c)
	})
	// mtlsServer requires client certificates (TestMutualTLS).
	mtlsServer = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := newCerts()
		if err != nil {
			return nil, err
		}
		conf := testenv.Scenario(c, 1)
		conf.ClientAuth = true
		return testenv.StartRedis(conf)
	})
	// enableSSLServer starts as S0 and is restarted with TLS by
	// TestPreferredAfterEnablingSSL, which puts it back first.
	enableSSLServer = testenv.NewLazy(func() (*testenv.Server, error) {
		c, err := newCerts()
		if err != nil {
			return nil, err
		}
		return testenv.StartRedis(testenv.Scenario(c, 0))
	})
)

// env returns the certificates and the scenario servers, starting them on
// first use; it skips the test under -short.
func env(t testing.TB) (*testenv.Certs, [8]*testenv.Server) {
	t.Helper()
	return lazyCerts.Get(t), scenarios.Get(t)
}

// newCerts makes the certificates once per test binary (testenv.GetCerts),
// as an error rather than a failed test, for a Lazy's start function.
func newCerts() (*testenv.Certs, error) {
	var tb errTB
	c := testenv.GetCerts(&tb)
	return c, tb.err
}

// errTB is a testenv.TB that keeps the failure.
type errTB struct{ err error }

func (*errTB) Helper() {}

func (e *errTB) Fatalf(format string, args ...any) { e.err = fmt.Errorf(format, args...) }

// TestMain starts no server: the lazies above do, for the tests that need
// them; Cleanup stops whatever they started.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quiet{})
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

func redisURL(host string, port int, params string) string {
	return fmt.Sprintf("redis://:%s@%s/0?%s", testenv.RedisPassword, net.JoinHostPort(host, strconv.Itoa(port)), params)
}

// result connects, runs a command, and reports "plain", "TLS" or the
// sentinel, with the port the server says the client reached.
func result(t *testing.T, u string, opts ...sslconn.Option) (string, sslconn.Status, int, error) {
	t.Helper()
	c, err := NewClient(u, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, opts...)...)
	if err != nil {
		return "config error", sslconn.Status{}, 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := Verify(ctx, c)
	if err != nil {
		return matrix.Kind(err), st, 0, err
	}
	info, err := c.ClientInfo(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, lport, _ := net.SplitHostPort(info.LAddr)
	port, _ := strconv.Atoi(lport)
	if st.Encrypted {
		return "TLS", st, port, nil
	}
	return "plain", st, port, nil
}

// TestMatrix: every mode against every scenario, each cell asserted through
// Verify, through the port the server says was reached (CLIENT INFO laddr),
// and through the sentinel error.
func TestMatrix(t *testing.T) {
	certs, servers := env(t)
	want := matrix.Want()
	for sc, s := range servers {
		for _, mode := range core.Modes {
			t.Run(testenv.ScenarioNames[sc]+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				port := matrix.PortFor(sc, s, mode)
				u := redisURL("localhost", port, "ssl-mode="+mode.String()+"&ssl-ca="+certs.CA)
				got, st, reached, err := result(t, u)
				if got != want[sc][mode] {
					t.Fatalf("got %s (%+v %v), want %s", got, st, err, want[sc][mode])
				}
				if err != nil {
					matrix.CheckErrorText(t, err, mode, "localhost", testenv.RedisPassword)
					return
				}
				if reached != port {
					t.Fatalf("server says port %d, dialled %d", reached, port)
				}
				if st.Encrypted && (!strings.HasPrefix(st.Version, "TLSv1.") || !strings.HasPrefix(st.Cipher, "TLS_")) {
					t.Fatalf("status %+v", st)
				}
			})
		}
	}
}

func TestCAFormats(t *testing.T) {
	certs, servers := env(t)
	for name, ca := range matrix.CAFiles(certs) {
		t.Run(name, func(t *testing.T) {
			got, _, _, err := result(t, redisURL("localhost", servers[1].TLSPort, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+ca))
			if got != "TLS" {
				t.Fatalf("%s %v", got, err)
			}
		})
	}
}

// TestModeFromURL: rediss:// means VERIFY_IDENTITY, skip_verify REQUIRED,
// redis:// PREFERRED, and a CA alone VERIFY_CA.
func TestModeFromURL(t *testing.T) {
	certs, servers := env(t)
	rediss := func(s *testenv.Server, params string) string {
		return strings.Replace(redisURL("localhost", s.TLSPort, params), "redis://", "rediss://", 1)
	}
	tests := []struct {
		name, url, want string
	}{
		{"rediss verifies the host", rediss(servers[3], "ssl-ca="+certs.CA), sslconn.ErrHostnameMismatch.Error()},
		{"rediss verifies the chain", rediss(servers[1], "ssl-ca="+certs.CA), "TLS"},
		{"rediss skip_verify is REQUIRED", rediss(servers[4], "skip_verify=true"), "TLS"},
		{"rediss with explicit VERIFY_CA", rediss(servers[3], "ssl-mode=VERIFY_CA&ssl-ca="+certs.CA), "TLS"},
		{"redis PREFERRED on the TLS port", redisURL("localhost", servers[4].TLSPort, ""), "TLS"},
		{"redis PREFERRED on the plaintext port", redisURL("localhost", servers[1].Port, ""), "plain"},
		{"redis with a CA alone is VERIFY_CA", redisURL("localhost", servers[3].TLSPort, "ssl-ca="+certs.CA), "TLS"},
		{"redis with a CA alone rejects another CA", redisURL("localhost", servers[4].TLSPort, "ssl-ca="+certs.CA), sslconn.ErrUnknownAuthority.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _, err := result(t, tt.url)
			if got != tt.want {
				t.Fatalf("%s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestBadURL(t *testing.T) {
	const pw = "Url-Secret-77"
	tests := []struct{ name, url, says string }{
		{"unknown mode", "redis://:" + pw + "@localhost:6379?ssl-mode=VERIFY", "VERIFY_IDENTITY"},
		{"rediss with DISABLED", "rediss://:" + pw + "@localhost:6379?ssl-mode=DISABLED", "redis://"},
		{"bad scheme", "mysql://:" + pw + "@localhost:6379", "redis://"},
		{"unknown go-redis parameter", "redis://:" + pw + "@localhost:6379?pool_sighs=3", "invalid Redis URL"},
		{"bad escape", "redis://:" + pw + "@localhost:6379/%zz", "invalid Redis URL"},
		{"missing CA", "redis://:" + pw + "@localhost:6379?ssl-ca=/nonexistent.pem", "ssl-ca"},
		{"skip_verify not a boolean", "rediss://:" + pw + "@localhost:6379?skip_verify=yes", "skip_verify"},
		{"skip_verify with VERIFY_CA", "rediss://:" + pw + "@localhost:6379?skip_verify=true&ssl-mode=VERIFY_CA", "drop skip_verify=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.url)
			matrix.CheckBadInput(t, err, tt.says, pw)
		})
	}
}

// TestMutualTLS against tls-auth-clients yes.
func TestMutualTLS(t *testing.T) {
	certs, s := lazyCerts.Get(t), mtlsServer.Get(t)
	base := "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA
	if got, _, _, err := result(t, redisURL("localhost", s.TLSPort, base+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.Client.Key)); got != "TLS" {
		t.Fatalf("with a client certificate: %s %v", got, err)
	}
	got, _, _, err := result(t, redisURL("localhost", s.TLSPort, base))
	if got != sslconn.ErrClientCertRequired.Error() || !strings.Contains(err.Error(), "ssl-cert") {
		t.Fatalf("without: %s %v", got, err)
	}
}

// TestCluster: a three-node TLS cluster announcing its nodes by IP, keys
// spread over all slots, each node verified against the name it is
// reached by or the override.
func TestCluster(t *testing.T) {
	certs, cluster := lazyCerts.Get(t), lazyCluster.Get(t)
	seed := fmt.Sprintf("redis://:%s@127.0.0.1:%d?addr=127.0.0.1:%d", testenv.RedisPassword, cluster[0].TLSPort, cluster[1].TLSPort)
	tests := []struct {
		name, params string
		wantErr      error
	}{
		{"VERIFY_CA with nodes by IP", "&ssl-mode=VERIFY_CA&ssl-ca=" + certs.CA, nil},
		{"VERIFY_IDENTITY by IP SAN", "&ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA, nil},
		{"VERIFY_IDENTITY with override", "&ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA + "&ssl-server-name=localhost", nil},
		{"VERIFY_IDENTITY with a wrong override", "&ssl-mode=VERIFY_IDENTITY&ssl-ca=" + certs.CA + "&ssl-server-name=other.example.com", sslconn.ErrHostnameMismatch},
		{"VERIFY_CA against another CA", "&ssl-mode=VERIFY_CA&ssl-ca=" + certs.OtherCA, sslconn.ErrUnknownAuthority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClusterClient(seed+tt.params, sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = c.Set(ctx, "probe", "1", 0).Err()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				if err := c.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
					t.Fatalf("SET key:%d: %v", i, err)
				}
			}
			for i := range 200 {
				v, err := c.Get(ctx, fmt.Sprintf("key:%d", i)).Int()
				if err != nil || v != i {
					t.Fatalf("GET key:%d = %d, %v", i, v, err)
				}
			}
			var masters atomic.Int32
			c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
				if n.DBSize(ctx).Val() > 0 {
					masters.Add(1)
				}
				return nil
			})
			if masters.Load() != 3 {
				t.Fatalf("keys on %d masters, want all 3", masters.Load())
			}
			st, err := Verify(ctx, c)
			if err != nil || !st.Encrypted {
				t.Fatalf("Verify: %+v %v", st, err)
			}
		})
	}
}

// TestPreferredAfterEnablingSSL: a PREFERRED client of a plaintext endpoint
// is encrypted, connection by connection, once the endpoint is restarted
// with TLS (the console's "enable SSL"), riding out the restart.
func TestPreferredAfterEnablingSSL(t *testing.T) {
	certs, s := lazyCerts.Get(t), enableSSLServer.Get(t)
	// An earlier run (-count) left it with TLS on.
	if s.TLS != testenv.Scenario(certs, 0) {
		if err := s.Restart(testenv.Scenario(certs, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var retries int
	var mu sync.Mutex
	c, err := NewClient(redisURL("localhost", s.Port, ""), sslconn.WithRetryCallback(func(sslconn.RetryEvent) { mu.Lock(); retries++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if st, err := Verify(ctx, c); err != nil || st.Encrypted {
		t.Fatalf("before: %+v %v", st, err)
	}
	tlsOn := testenv.Scenario(certs, 1)
	tlsOn.OnPlainPort = true
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		s.TLS = tlsOn
		if err := s.Start(); err != nil {
			t.Error(err)
		}
	}()
	// The pooled connection died with the server: the first command on it
	// fails (its outcome is unknown, so it is not re-sent); then new
	// connections wait for the restart and are encrypted.
	var st sslconn.Status
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err = Verify(ctx, c); err == nil {
			break
		}
	}
	if err != nil || !st.Encrypted {
		t.Fatalf("after: %+v %v", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if retries == 0 {
		t.Fatal("no retry reported while the server was down")
	}
}

// quiet drops go-redis's own log lines, which the tests provoke on purpose.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestOutcomeOf: on a cluster's node clients, an error after the command
// was sent hides its chain behind sslconn.ErrOutcomeUnknown, so go-redis's
// cluster loop, which re-sends after io.EOF and timeouts whatever
// MaxRetries says, reports it instead; errors from before sending pass.
func TestOutcomeOf(t *testing.T) {
	sent := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name    string
		err     error
		unknown bool
	}{
		{"EOF", io.EOF, true},
		{"reset on read", sent, true},
		{"closed", fmt.Errorf("read: %w", net.ErrClosed), true},
		{"read timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{"not sent", core.NotSent(&net.TCPConn{}, io.EOF), false},
		{"dial refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{"dial timeout", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, false},
		{"TLS refused", core.NewError(sslconn.ErrServerNoTLS, sslconn.Required, "h", "", io.EOF), false},
		{"MOVED", redis.Nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcomeOf(tt.err)
			if unknown := errors.Is(got, sslconn.ErrOutcomeUnknown); unknown != tt.unknown {
				t.Fatalf("outcomeOf(%v) = %v", tt.err, got)
			}
			if tt.unknown && (errors.Is(got, io.EOF) || errors.Is(got, syscall.ECONNRESET) || errors.Is(got, net.ErrClosed) || isTimeout(got)) {
				t.Errorf("%v still shows its cause to go-redis's retry check", got)
			}
		})
	}
}
