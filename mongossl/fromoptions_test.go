package mongossl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// countingDialer is a user's ContextDialer that counts its dials.
type countingDialer struct {
	n atomic.Int32
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in " + file)
	}
	return pool
}

// TestConnectOptionsMonitors: the command and pool monitors set on the
// user's options see the client's commands and connections, in
// VERIFY_IDENTITY, as OpenTelemetry's otelmongo monitor would; the
// caller's options are not changed.
func TestConnectOptionsMonitors(t *testing.T) {
	env := scenarios.Get(t)
	var (
		mu      sync.Mutex
		started = map[string]int{}
		created atomic.Int32
	)
	co := options.Client().ApplyURI("mongodb://" + net.JoinHostPort("localhost", strconv.Itoa(env.Servers[1].TLSPort))).
		SetAppName("sslconn-monitor-test").
		SetMaxPoolSize(4).
		SetMonitor(&event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			mu.Lock()
			started[e.CommandName]++
			mu.Unlock()
		}}).
		SetPoolMonitor(&event.PoolMonitor{Event: func(e *event.PoolEvent) {
			if e.Type == event.ConnectionCreated {
				created.Add(1)
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ConnectOptions(ctx, co, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(env.Certs.CA), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	coll := c.Database("sslconn_test").Collection("monitors")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "x", Value: 1}}).Err(); err != nil {
		t.Fatal(err)
	}
	st, err := Verify(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify", st, true)
	mu.Lock()
	defer mu.Unlock()
	if started["insert"] == 0 || started["find"] == 0 {
		t.Errorf("the command monitor saw %v, want insert and find", started)
	}
	if created.Load() == 0 {
		t.Error("the pool monitor saw no connection created")
	}
	if co.Dialer != nil || co.TLSConfig != nil {
		t.Error("the caller's options were changed")
	}
}

// TestConnectOptionsDialer: the user's Dialer makes the TCP connections
// under TLS (preflight, pool and monitor alike); sslconn.WithDialer, when
// given too, wins.
func TestConnectOptionsDialer(t *testing.T) {
	env := scenarios.Get(t)
	uri := "mongodb://" + net.JoinHostPort("localhost", strconv.Itoa(env.Servers[1].TLSPort))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	run := func(co *options.ClientOptions, opts ...sslconn.Option) {
		t.Helper()
		opts = append([]sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(env.Certs.CA), sslconn.WithRetryBudget(-1)}, opts...)
		c, err := ConnectOptions(ctx, co, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(context.Background())
		st, err := Verify(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		matrix.CheckStatus(t, "Verify", st, true)
	}
	user := &countingDialer{}
	run(options.Client().ApplyURI(uri).SetDialer(user))
	if user.n.Load() < 2 { // the preflight's, and the pool's at least
		t.Fatalf("the user's Dialer dialled %d times", user.n.Load())
	}

	user = &countingDialer{}
	var ours atomic.Int32
	withDialer := sslconn.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		ours.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
	run(options.Client().ApplyURI(uri).SetDialer(user), withDialer)
	if user.n.Load() != 0 || ours.Load() == 0 {
		t.Fatalf("co.Dialer dialled %d times, WithDialer %d: WithDialer should win", user.n.Load(), ours.Load())
	}
}

// TestConnectOptionsTLSConfig: a *tls.Config on the options is read, not
// dropped: its RootCAs and ServerName connect verified, and a ServerName
// the certificate does not hold fails ConnectOptions at once with
// ErrHostnameMismatch.
func TestConnectOptionsTLSConfig(t *testing.T) {
	env := scenarios.Get(t)
	pool := caPool(t, env.Certs.CA)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(env.Servers[1].TLSPort))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	co := options.Client().SetHosts([]string{addr}).SetTLSConfig(tc)
	c, err := ConnectOptions(ctx, co, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Verify(ctx, c)
	_ = c.Disconnect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify", st, true)
	if co.TLSConfig != tc || tc.ServerName != "localhost" || co.Dialer != nil {
		t.Error("the caller's options were changed")
	}

	start := time.Now()
	co = options.Client().SetHosts([]string{addr}).SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "not-this-host.example"})
	c, err = ConnectOptions(ctx, co)
	if err == nil {
		_ = c.Disconnect(context.Background())
	}
	if !errors.Is(err, sslconn.ErrHostnameMismatch) {
		t.Fatalf("wrong ServerName: %v, want ErrHostnameMismatch", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the error took %v", d)
	}
}

// TestConnectOptionsFromClientOptions: options from ClientOptions, with a
// monitor added, connect through ConnectOptions with their URI's mode.
func TestConnectOptionsFromClientOptions(t *testing.T) {
	env := scenarios.Get(t)
	co, err := ClientOptions(mongoURI("localhost", env.Servers[3].TLSPort, "ssl-mode=VERIFY_CA&ssl-ca="+env.Certs.CA))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	co.SetMonitor(&event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { n.Add(1) }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ConnectOptions(ctx, co) // S3: a certificate for another host, fine in VERIFY_CA
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())
	if n.Load() == 0 {
		t.Error("the monitor saw nothing")
	}
	// More options on top of the URI's: VERIFY_IDENTITY now refuses it.
	c, err = ConnectOptions(ctx, co, sslconn.WithMode(sslconn.VerifyIdentity))
	if err == nil {
		_ = c.Disconnect(context.Background())
	}
	if !errors.Is(err, sslconn.ErrHostnameMismatch) {
		t.Fatalf("VERIFY_IDENTITY on top: %v, want ErrHostnameMismatch", err)
	}
}

// TestConnectOptionsTLS: the options' TLS settings map onto modes, and
// bad input is ErrInvalidOption naming both settings, without the
// password, before any connection. No server.
func TestConnectOptionsTLS(t *testing.T) {
	pool := caPool(t, shortPKI(t).CA)
	const pw = "Opts-Secret-pw4"
	base := func(tc *tls.Config) *options.ClientOptions {
		return options.Client().SetHosts([]string{"db.example.com:27017"}).
			SetAuth(options.Credential{Username: "app", Password: pw}).SetTLSConfig(tc)
	}
	fromURI, err := ClientOptions("mongodb://app:" + pw + "@db.example.com/?tls=true")
	if err != nil {
		t.Fatal(err)
	}
	noRevocation, err := ClientOptions("mongodb://app:" + pw + "@db.example.com/?tlsDisableCertificateRevocationCheck=true")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		co           *options.ClientOptions
		opts         []sslconn.Option
		want         sslconn.Mode
		noRevocation bool     // the dialer checks no OCSP staple
		says         []string // in the Config's String, or in the error
		err          bool     // ErrInvalidOption
	}{
		{name: "no TLSConfig", co: base(nil), want: sslconn.Preferred},
		{name: "no TLSConfig, a CA", co: base(nil), opts: []sslconn.Option{sslconn.WithCAFile(shortPKI(t).CA)}, want: sslconn.VerifyCA},
		{name: "TLSConfig", co: base(&tls.Config{}), want: sslconn.VerifyIdentity},
		{name: "TLSConfig read", co: base(&tls.Config{RootCAs: pool, ServerName: "db.internal", MinVersion: tls.VersionTLS13}),
			want: sslconn.VerifyIdentity, says: []string{`server-name="db.internal"`, "tls=TLSv1.3", "RootCAs"}},
		{name: "InsecureSkipVerify", co: base(&tls.Config{InsecureSkipVerify: true}), want: sslconn.Required},
		{name: "options override", co: base(&tls.Config{ServerName: "db.internal"}),
			opts: []sslconn.Option{sslconn.WithServerName("other.internal"), sslconn.WithMode(sslconn.VerifyCA)},
			want: sslconn.VerifyCA, says: []string{`server-name="other.internal"`}},
		{name: "from ClientOptions", co: fromURI, want: sslconn.VerifyIdentity},
		{name: "from ClientOptions, more options", co: fromURI, opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)}, want: sslconn.VerifyCA},
		{name: "from ClientOptions, tlsDisableCertificateRevocationCheck stays", co: noRevocation, want: sslconn.VerifyIdentity, noRevocation: true},
		// #29: the driver's ApplyURI keeps ssl-* as unknown options and
		// ignores them; they are read as ClientOptions reads them.
		{name: "driver's ApplyURI, ssl-mode", co: options.Client().ApplyURI("mongodb://app:" + pw + "@db.example.com/?ssl-mode=REQUIRED"), want: sslconn.Required},
		{name: "driver's ApplyURI, ssl-ca", co: options.Client().ApplyURI("mongodb://app:" + pw + "@db.example.com/?ssl-mode=VERIFY_IDENTITY&ssl-ca=" + url.QueryEscape(shortPKI(t).CA)),
			want: sslconn.VerifyIdentity, says: []string{"ca=" + shortPKI(t).CA}},
		{name: "driver's ApplyURI, options win", co: options.Client().ApplyURI("mongodb://app:" + pw + "@db.example.com/?ssl-mode=REQUIRED"),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)}, want: sslconn.Disabled},

		{name: "nil", co: nil, err: true, says: []string{"nil"}},
		{name: "InsecureSkipVerify and VERIFY_CA", co: base(&tls.Config{InsecureSkipVerify: true}), opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)},
			err: true, says: []string{"InsecureSkipVerify", "sslconn.WithMode(sslconn.VerifyCA)"}},
		{name: "TLSConfig and DISABLED", co: base(&tls.Config{}), opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)},
			err: true, says: []string{"TLSConfig", "sslconn.WithMode(sslconn.Disabled)"}},
		{name: "from ClientOptions, tls=true and DISABLED", co: fromURI, opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)},
			err: true, says: []string{"tls=true", "sslconn.WithMode(sslconn.Disabled)"}},
		{name: "from ClientOptions and a TLSConfig", co: func() *options.ClientOptions {
			c := *fromURI
			return c.SetTLSConfig(&tls.Config{})
		}(), err: true, says: []string{"TLSConfig", pkg + ".ClientOptions"}},
		//v1:omit v1's options have no SetDisableCertificateRevocationCheck
		{name: "InsecureSkipVerify and tlsDisableCertificateRevocationCheck", co: base(&tls.Config{InsecureSkipVerify: true}).SetDisableCertificateRevocationCheck(true),
			err: true, says: []string{"tlsInsecure", "tlsDisableCertificateRevocationCheck"}},
		//v1:end
		{name: "the driver rejects the URI", co: options.Client().ApplyURI("mongodb://app:" + pw + "@[::1/?x"), err: true, says: []string{"invalid client options"}},
		{name: "driver's ApplyURI, misspelt ssl-mode", co: options.Client().ApplyURI("mongodb://app:" + pw + "@db.example.com/?ssl-mdoe=REQUIRED"),
			err: true, says: []string{"ssl-mdoe", "did you mean ssl-mode?"}},
		{name: "driver's ApplyURI, tls=true and ssl-mode=DISABLED", co: options.Client().ApplyURI("mongodb://app:" + pw + "@db.example.com/?tls=true&ssl-mode=DISABLED"),
			err: true, says: []string{"TLSConfig", "ssl-mode=DISABLED"}},
		{name: "a bad CA", co: base(&tls.Config{}), opts: []sslconn.Option{sslconn.WithCAFile("/nonexistent.pem")}, err: true, says: []string{"sslconn.WithCAFile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *options.ClientOptions
			if tt.co != nil {
				cp := *tt.co
				before = &cp
			}
			c, d, err := fromOptions(tt.co, tt.opts)
			if tt.err {
				matrix.CheckBadInput(t, err, tt.says[0], pw)
				for _, s := range tt.says[1:] {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%v does not name %s", err, s)
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := d.Cfg.Mode(); got != tt.want {
					t.Errorf("mode %v, want %v", got, tt.want)
				}
				if d.Revocation == tt.noRevocation {
					t.Errorf("revocation check %t, want %t", d.Revocation, !tt.noRevocation)
				}
				for _, s := range tt.says {
					if !strings.Contains(d.Cfg.String(), s) {
						t.Errorf("%s does not say %s", d.Cfg, s)
					}
				}
				if c.TLSConfig != nil || c.Dialer != d {
					t.Error("the copy does not carry the TLS dialer alone")
				}
				if s := d.String(); strings.Contains(s, pw) || !strings.HasPrefix(s, pkg+".") {
					t.Errorf("the dialer prints %s", s)
				}
			}
			if tt.co != nil && (tt.co.TLSConfig != before.TLSConfig || tt.co.Dialer != before.Dialer) {
				t.Error("the caller's options were changed")
			}
		})
	}
}
