package mssqlssl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// poolOf is a pool holding the certificate in the PEM file name.
func poolOf(t testing.TB, name string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", name)
	}
	return pool
}

// TestFromConfigTLS: a msdsn.Config's own TLS settings map onto modes as
// encrypt=, TrustServerCertificate= and certificate= do in a DSN, its
// *tls.Config is read, not dropped, and a setting that contradicts an
// explicit mode is an ErrInvalidOption naming both. No server needed.
func TestFromConfigTLS(t *testing.T) {
	const pw = "Cfg-Secret-pw1"
	pool := poolOf(t, certFile(t))
	base := func(mut func(*msdsn.Config)) msdsn.Config {
		c := msdsn.Config{Host: "db.example.com", Port: 1433, User: "app", Password: pw, Database: "shop"}
		mut(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  msdsn.Config
		opts []sslconn.Option
		want sslconn.Mode
		says []string // in the Config's String
		err  []string // an ErrInvalidOption naming these
	}{
		{name: "nothing", cfg: base(func(*msdsn.Config) {}), want: sslconn.Preferred},
		{name: "EncryptionDisabled", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionDisabled }), want: sslconn.Disabled},
		{name: "EncryptionRequired", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionRequired }), want: sslconn.VerifyIdentity},
		{name: "EncryptionStrict", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionStrict }), want: sslconn.VerifyIdentity},
		{name: "EncryptionRequired, TrustServerCertificate", cfg: base(func(c *msdsn.Config) {
			c.Encryption, c.TrustServerCertificate = msdsn.EncryptionRequired, true
		}), want: sslconn.Required},
		{name: "EncryptionRequired, InsecureSkipVerify", cfg: base(func(c *msdsn.Config) {
			c.Encryption, c.TLSConfig = msdsn.EncryptionRequired, &tls.Config{InsecureSkipVerify: true}
		}), want: sslconn.Required},
		{name: "TrustServerCertificate alone", cfg: base(func(c *msdsn.Config) { c.TrustServerCertificate = true }), want: sslconn.Required},
		{name: "tls.Config read", cfg: base(func(c *msdsn.Config) {
			c.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "db.internal", MinVersion: tls.VersionTLS13}
		}), want: sslconn.VerifyIdentity, says: []string{`server-name="db.internal"`, "tls=TLSv1.3", "RootCAs"}},
		{name: "tls.Config with InsecureSkipVerify", cfg: base(func(c *msdsn.Config) { c.TLSConfig = &tls.Config{InsecureSkipVerify: true} }),
			want: sslconn.Required},
		{name: "HostInCertificate", cfg: base(func(c *msdsn.Config) {
			c.Encryption, c.HostInCertificateProvided, c.TLSConfig = msdsn.EncryptionRequired, true, &tls.Config{ServerName: "cn.internal"}
		}), want: sslconn.VerifyIdentity, says: []string{`server-name="cn.internal"`}},
		{name: "parameters", cfg: base(func(c *msdsn.Config) {
			c.Encryption = msdsn.EncryptionRequired
			c.Parameters = map[string]string{"encrypt": "true", "hostnameincertificate": "h.internal", "tlsmin": "1.3", "ssl-mode": "VERIFY_CA"}
		}), want: sslconn.VerifyCA, says: []string{`server-name="h.internal"`, "tls=TLSv1.3"}},
		{name: "options override", cfg: base(func(c *msdsn.Config) { c.TLSConfig = &tls.Config{ServerName: "db.internal"} }),
			opts: []sslconn.Option{sslconn.WithServerName("other.internal"), sslconn.WithMode(sslconn.VerifyCA)},
			want: sslconn.VerifyCA, says: []string{`server-name="other.internal"`}},

		{name: "EncryptionDisabled and REQUIRED", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionDisabled }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Required)}, err: []string{"Encryption=msdsn.EncryptionDisabled", "sslconn.WithMode(sslconn.Required)"}},
		{name: "TrustServerCertificate and VERIFY_CA", cfg: base(func(c *msdsn.Config) {
			c.Encryption, c.TrustServerCertificate = msdsn.EncryptionRequired, true
		}), opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)}, err: []string{"TrustServerCertificate", "sslconn.WithMode(sslconn.VerifyCA)"}},
		{name: "TrustServerCertificate alone and VERIFY_IDENTITY", cfg: base(func(c *msdsn.Config) { c.TrustServerCertificate = true }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity)}, err: []string{"TrustServerCertificate", "sslconn.WithMode(sslconn.VerifyIdentity)"}},
		{name: "InsecureSkipVerify and VERIFY_IDENTITY", cfg: base(func(c *msdsn.Config) { c.TLSConfig = &tls.Config{InsecureSkipVerify: true} }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity)}, err: []string{"InsecureSkipVerify", "sslconn.WithMode(sslconn.VerifyIdentity)"}},
		{name: "EncryptionRequired and DISABLED", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionRequired }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)}, err: []string{"Encryption=msdsn.EncryptionRequired", "sslconn.WithMode(sslconn.Disabled)"}},
		{name: "EncryptionStrict and PREFERRED", cfg: base(func(c *msdsn.Config) { c.Encryption = msdsn.EncryptionStrict }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Preferred)}, err: []string{"Encryption=msdsn.EncryptionStrict", "PREFERRED"}},
		{name: "unknown Encryption", cfg: base(func(c *msdsn.Config) { c.Encryption = 7 }), err: []string{"Encryption=7"}},
		{name: "own VerifyPeerCertificate", cfg: base(func(c *msdsn.Config) {
			c.TLSConfig = &tls.Config{VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}
		}), err: []string{"VerifyPeerCertificate"}},
		{name: "serverCertificate pinning", cfg: base(func(c *msdsn.Config) { c.Parameters = map[string]string{"servercertificate": "/x.pem"} }),
			err: []string{"serverCertificate"}},
		{name: "misspelled ssl parameter", cfg: base(func(c *msdsn.Config) { c.Parameters = map[string]string{"ssl-mod": "REQUIRED"} }),
			err: []string{"ssl-mod"}},
		{name: "no Host", cfg: msdsn.Config{Password: pw}, err: []string{"Host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewConnectorFromConfig(tt.cfg, tt.opts...)
			if tt.err != nil {
				if !errors.Is(err, sslconn.ErrInvalidOption) {
					t.Fatalf("err = %v, want ErrInvalidOption", err)
				}
				for _, s := range tt.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%q does not name %q", err, s)
					}
				}
				if strings.Contains(err.Error(), pw) {
					t.Errorf("password in %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Config().Mode(); got != tt.want {
				t.Errorf("mode %v, want %v", got, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(c.Config().String(), s) {
					t.Errorf("%s does not say %s", c.Config(), s)
				}
			}
			if strings.Contains(c.String(), pw) {
				t.Errorf("password in %s", c)
			}
		})
	}
}

// TestFromConfigAgreesWithDSN: a DSN through NewConnector and the same DSN
// parsed by msdsn.Parse through NewConnectorFromConfig give the same mode
// and configuration, or the same error, for every go-mssqldb TLS setting
// against every explicit mode; the TLSConfig that Parse derives from the
// parameters adds nothing.
func TestFromConfigAgreesWithDSN(t *testing.T) {
	ca := certFile(t)
	natives := []string{"", "encrypt=disable", "encrypt=false", "encrypt=true", "encrypt=true&TrustServerCertificate=true",
		"encrypt=strict", "encrypt=strict&TrustServerCertificate=true", "TrustServerCertificate=true", "encrypt=false&TrustServerCertificate=true",
		"certificate=CA", "encrypt=true&certificate=CA&hostNameInCertificate=h.internal&tlsmin=1.1", "encrypt=yes&TrustServerCertificate=yes"}
	for _, native := range natives {
		for _, mode := range append([]sslconn.Mode{0}, core.Modes...) {
			dsn := "sqlserver://sa:Agree-Secret-1@127.0.0.1:1433?database=master&" + strings.Replace(native, "=CA", "="+ca, 1)
			if mode != 0 {
				dsn += "&ssl-mode=" + mode.String()
			}
			t.Run(native+"/"+mode.String(), func(t *testing.T) {
				a, errA := NewConnector(dsn)
				cfg, err := msdsn.Parse(dsn)
				if err != nil {
					t.Fatal(err)
				}
				b, errB := NewConnectorFromConfig(cfg)
				switch {
				case errA != nil || errB != nil:
					if errA == nil || errB == nil || errA.Error() != errB.Error() {
						t.Fatalf("DSN: %v\nConfig: %v", errA, errB)
					}
				case a.Config().String() != b.Config().String() || a.strict != b.strict:
					t.Fatalf("DSN: %s strict=%t\nConfig: %s strict=%t", a.Config(), a.strict, b.Config(), b.strict)
				}
			})
		}
	}
}

// TestFromConfigCopies: the caller's msdsn.Config is not changed by
// NewConnectorFromConfig nor by connecting, and changing it afterwards does
// not change the connector.
func TestFromConfigCopies(t *testing.T) {
	build := func() msdsn.Config {
		return msdsn.Config{
			Host: "tcp:127.0.0.1,1", User: "app", Password: "Copy-Secret-1", Database: "master",
			Parameters: map[string]string{"app name": "copy-test"},
			TLSConfig:  &tls.Config{ServerName: "db.internal", MinVersion: tls.VersionTLS12},
		}
	}
	cfg, want := build(), build()
	c, err := NewConnectorFromConfig(cfg, sslconn.WithRetryBudget(-1), sslconn.WithMode(sslconn.Required))
	if err != nil {
		t.Fatal(err)
	}
	before := c.String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx); err == nil {
		t.Fatal("connected to port 1")
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("the caller's config changed:\n%+v\nwant\n%+v", cfg, want)
	}
	cfg.Parameters["encrypt"] = "disable"
	cfg.TLSConfig.ServerName = "changed.internal"
	cfg.Host = "changed.example.com"
	if c.String() != before || c.base.Parameters["encrypt"] != "" || c.base.TLSConfig.ServerName != "db.internal" {
		t.Fatalf("the connector changed with the caller's config: %s", c)
	}
}

// TestFromConfigConnects: a config built in code, its RootCAs and server
// name in a *tls.Config, connects verified (with Encryption unset and with
// EncryptionRequired); the same pool with a name the certificate does not
// hold is refused with ErrHostnameMismatch.
func TestFromConfigConnects(t *testing.T) {
	env := scenarios.Get(t)
	s := env.servers[1]
	pool := poolOf(t, env.certs.CA)
	cfgFor := func(enc msdsn.Encryption, serverName string) msdsn.Config {
		return msdsn.Config{
			Host: "127.0.0.1", Port: uint64(s.Port()), User: user, Password: password, Database: "master",
			Encryption: enc, TLSConfig: &tls.Config{RootCAs: pool, ServerName: serverName},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, enc := range []msdsn.Encryption{msdsn.EncryptionOff, msdsn.EncryptionRequired} {
		t.Run(encryptionSetting(msdsn.Config{Encryption: enc}), func(t *testing.T) {
			c, err := NewConnectorFromConfig(cfgFor(enc, "localhost"), sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			if c.Config().Mode() != sslconn.VerifyIdentity {
				t.Fatalf("mode %s", c.Config().Mode())
			}
			db := sql.OpenDB(c)
			defer db.Close()
			st, err := Verify(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			matrix.CheckStatus(t, "Verify", st, true)

			c, err = NewConnectorFromConfig(cfgFor(enc, "not-this-host.example"), sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			db2 := sql.OpenDB(c)
			defer db2.Close()
			if err := db2.PingContext(ctx); !errors.Is(err, sslconn.ErrHostnameMismatch) {
				t.Fatalf("wrong server name: %v, want ErrHostnameMismatch", err)
			}
		})
	}
}

// TestWithDialer: sslconn.WithDialer's dial carries every connection, and
// gets the host name, not an address resolved here (a bastion resolves it
// in its own network).
func TestWithDialer(t *testing.T) {
	env := scenarios.Get(t)
	var dialed atomic.Value
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Store(addr)
		return d.DialContext(ctx, network, addr)
	}
	db, err := Open(urlDSN(env.servers[1], "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+env.certs.CA), sslconn.WithDialer(dial))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := Verify(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify", st, true)
	if got, want := dialed.Load(), "localhost:"+strconv.Itoa(env.servers[1].Port()); got != want {
		t.Fatalf("dialed %v, want %s", got, want)
	}
}

// tokenServer is a TDS server (TLS optional) that accepts access tokens.
func tokenServer(t *testing.T, token string) (*tdsserver.Server, *testenv.Certs) {
	t.Helper()
	certs := serverCerts.Get(t)
	conf := serverConfig(testenv.Scenario(certs, 1))
	conf.Token = token
	s, err := tdsserver.Start(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, certs
}

// countingProvider hands out the token current holds, counting calls.
type countingProvider struct {
	current atomic.Value          // string
	err     atomic.Pointer[error] // nil: none
	calls   atomic.Int32
}

func (p *countingProvider) token(ctx context.Context) (string, error) {
	p.calls.Add(1)
	if e := p.err.Load(); e != nil {
		return "", *e
	}
	return p.current.Load().(string), nil
}

// TestAccessToken: every new connection asks the provider and logs in with
// the token it returns, in VERIFY_IDENTITY, while the server rotates the
// token it accepts; a stale token is the server's refusal, at once; a
// failing provider is a *TokenError, not retried; the token is in no error.
func TestAccessToken(t *testing.T) {
	tokens := []string{"Entra-Token-0001", "Entra-Token-0002", "Entra-Token-0003"}
	s, certs := tokenServer(t, tokens[0])
	p := &countingProvider{}
	p.current.Store(tokens[0])
	c, err := NewAccessTokenConnector(urlDSN(s, "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA), p.token)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	db.SetMaxIdleConns(0) // every query on a new connection
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, tok := range tokens {
		s.SetToken(tok)
		p.current.Store(tok)
		st, err := Verify(ctx, db)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		matrix.CheckStatus(t, "Verify", st, true)
		if n := p.calls.Load(); n != int32(i+1) {
			t.Fatalf("token %d: the provider was called %d times for %d connections", i, n, i+1)
		}
	}
	noToken := func(t *testing.T, err error) {
		t.Helper()
		for _, tok := range append(tokens, "Entra-Token-stale") {
			for _, text := range []string{err.Error(), fmtAll(err)} {
				if strings.Contains(text, tok) {
					t.Fatalf("token in %q", text)
				}
			}
		}
		if strings.Contains(c.String(), "Entra-Token") || strings.Contains(fmtAll(c), "Entra-Token") {
			t.Fatalf("token in %s", c)
		}
	}

	t.Run("stale token", func(t *testing.T) {
		p.current.Store("Entra-Token-stale")
		before := p.calls.Load()
		err := db.PingContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "Login failed") || !core.IsPermanent(err) {
			t.Fatalf("stale token: %v", err)
		}
		if n := p.calls.Load() - before; n != 1 {
			t.Fatalf("the provider was called %d times, want once (no retry)", n)
		}
		noToken(t, err)
	})

	t.Run("failing provider", func(t *testing.T) {
		errDown := errors.New("token endpoint down")
		// A provider whose error echoes the token it last returned.
		failure := errors.Join(errDown, errors.New("could not refresh "+tokens[2]))
		p.err.Store(&failure)
		defer p.err.Store(nil)
		before := p.calls.Load()
		start := time.Now()
		err := db.PingContext(ctx)
		var te *TokenError
		if !errors.As(err, &te) || !errors.Is(err, errDown) || !core.IsPermanent(err) {
			t.Fatalf("failing provider: %v, want a permanent *TokenError wrapping the provider's error", err)
		}
		if n := p.calls.Load() - before; n != 1 {
			t.Fatalf("the provider was called %d times, want once (no retry)", n)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		noToken(t, err)
	})

	t.Run("empty token", func(t *testing.T) {
		p.current.Store("")
		var te *TokenError
		if err := db.PingContext(ctx); !errors.As(err, &te) || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("empty token: %v", err)
		}
	})

	t.Run("the token is back", func(t *testing.T) {
		p.current.Store(tokens[2])
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func fmtAll(v any) string {
	return fmt.Sprintf("%v|%+v|%#v", v, v, v)
}

// TestAccessTokenBadInput: a nil provider, a bad DSN and a contradicting
// mode are ErrInvalidOption, without the password; no server needed.
func TestAccessTokenBadInput(t *testing.T) {
	const pw = "Token-Dsn-Secret-3"
	ok := func(context.Context) (string, error) { return "t", nil }
	tests := []struct {
		name  string
		dsn   string
		token func(context.Context) (string, error)
		says  string
	}{
		{"nil provider", "sqlserver://sa:" + pw + "@localhost?encrypt=true", nil, "token"},
		{"malformed DSN", "sqlserver://sa:" + pw + "@[127.0.0.1:1?x", ok, "invalid SQL Server DSN"},
		{"encrypt=disable with VERIFY_IDENTITY", "sqlserver://sa:" + pw + "@localhost?encrypt=disable&ssl-mode=VERIFY_IDENTITY", ok, "encrypt=disable"},
		{"TrustServerCertificate with VERIFY_CA", "sqlserver://sa:" + pw + "@localhost?encrypt=true&TrustServerCertificate=true&ssl-mode=VERIFY_CA", ok, "TrustServerCertificate=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAccessTokenConnector(tt.dsn, tt.token)
			matrix.CheckBadInput(t, err, tt.says, pw)
		})
	}
}
