package mysqlssl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestFromConfigBeforeConnect: the IAM pattern. A BeforeConnect hook set on
// the driver's config puts the current password into every new connection;
// the password changes on the server between connections, and every
// connection, in VERIFY_IDENTITY, logs in with the password of its time.
func TestFromConfigBeforeConnect(t *testing.T) {
	env := scenarios.Get(t)
	s := env.servers[1]
	const user = "iam_user"
	passwords := []string{"Iam-Token-0001", "Iam-Token-0002", "Iam-Token-0003"}
	if _, err := s.MySQL(fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON %s.* TO '%s'@'%%'",
		user, passwords[0], testenv.MySQLDatabase, user)); err != nil {
		t.Fatal(err)
	}
	var (
		current atomic.Value // the token a credentials provider would hand out now
		calls   atomic.Int32
	)
	current.Store(passwords[0])
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = user, "tcp", testenv.Addr(s.Port), testenv.MySQLDatabase
	if err := cfg.Apply(mysql.BeforeConnect(func(_ context.Context, c *mysql.Config) error {
		calls.Add(1)
		c.Passwd = current.Load().(string)
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	conn, err := NewConnectorFromConfig(cfg, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(env.certs.CA), sslconn.WithServerName("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxIdleConns(0) // every query on a new connection
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, pw := range passwords {
		if i > 0 {
			if _, err := s.MySQL(fmt.Sprintf("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'", user, pw)); err != nil {
				t.Fatal(err)
			}
			current.Store(pw)
		}
		st, err := Verify(ctx, db)
		if err != nil {
			t.Fatalf("password %d: %v", i, err)
		}
		if !st.Encrypted {
			t.Fatalf("password %d: plaintext", i)
		}
	}
	if n := calls.Load(); n < int32(len(passwords)) {
		t.Fatalf("BeforeConnect ran %d times for %d connections", n, len(passwords))
	}
	// A stale token is the server's refusal, at once, without the token in it.
	current.Store("Iam-Token-stale")
	err = db.PingContext(ctx)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 || strings.Contains(err.Error(), "Iam-Token-stale") {
		t.Fatalf("stale token: %v", err)
	}
}

// TestFromConfigTLS: the driver config's own TLS settings map onto modes,
// as tls= does in a DSN, and its *tls.Config is read, not dropped.
func TestFromConfigTLS(t *testing.T) {
	certs := testenv.GetCerts(t)
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	base := func(mut func(*mysql.Config)) *mysql.Config {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Addr = "app", "Cfg-Secret-pw1", "db.example.com:3306"
		mut(c)
		return c
	}
	registerOnce.Do(func() {
		if err := mysql.RegisterTLSConfig("sslconn-test", &tls.Config{RootCAs: pool, ServerName: "db.internal"}); err != nil {
			t.Fatal(err)
		}
	})
	tests := []struct {
		name string
		cfg  *mysql.Config
		opts []sslconn.Option
		want sslconn.Mode
		says []string // in the Config's String
		err  string   // an ErrInvalidOption naming this
	}{
		{name: "nothing", cfg: base(func(*mysql.Config) {}), want: sslconn.Preferred},
		{name: "TLSConfig=true", cfg: base(func(c *mysql.Config) { c.TLSConfig = "true" }), want: sslconn.VerifyIdentity},
		{name: "TLSConfig=skip-verify", cfg: base(func(c *mysql.Config) { c.TLSConfig = "skip-verify" }), want: sslconn.Required},
		{name: "TLSConfig=preferred", cfg: base(func(c *mysql.Config) { c.TLSConfig = "preferred" }), want: sslconn.Preferred},
		{name: "TLSConfig=false", cfg: base(func(c *mysql.Config) { c.TLSConfig = "false" }), want: sslconn.Disabled},
		{name: "tls.Config read", cfg: base(func(c *mysql.Config) {
			c.TLS = &tls.Config{RootCAs: pool, ServerName: "db.internal", MinVersion: tls.VersionTLS13}
		}), want: sslconn.VerifyIdentity, says: []string{`server-name="db.internal"`, "tls=TLSv1.3", "RootCAs"}},
		{name: "registered name", cfg: base(func(c *mysql.Config) { c.TLSConfig = "sslconn-test" }),
			want: sslconn.VerifyIdentity, says: []string{`server-name="db.internal"`, "RootCAs"}},
		{name: "options override", cfg: base(func(c *mysql.Config) { c.TLS = &tls.Config{ServerName: "db.internal"} }),
			opts: []sslconn.Option{sslconn.WithServerName("other.internal"), sslconn.WithMode(sslconn.VerifyCA)},
			want: sslconn.VerifyCA, says: []string{`server-name="other.internal"`}},
		{name: "verification off and VERIFY_CA", cfg: base(func(c *mysql.Config) { c.TLS = &tls.Config{InsecureSkipVerify: true} }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)}, err: "InsecureSkipVerify"},
		{name: "TLS off and REQUIRED", cfg: base(func(c *mysql.Config) { c.TLSConfig = "false" }),
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Required)}, err: "TLSConfig=false"},
		{name: "unknown name", cfg: base(func(c *mysql.Config) { c.TLSConfig = "nope" }), err: "nope"},
		{name: "nil", cfg: nil, err: "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewConnectorFromConfig(tt.cfg, tt.opts...)
			if tt.err != "" {
				if !errors.Is(err, sslconn.ErrInvalidOption) || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "Cfg-Secret-pw1") {
					t.Fatalf("err = %v, want ErrInvalidOption naming %s", err, tt.err)
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
			if tt.cfg != nil && tt.cfg.TLS != nil && tt.cfg.TLS.ServerName != "db.internal" {
				t.Errorf("the caller's config was changed")
			}
		})
	}
}

var registerOnce sync.Once

// TestFromConfigConnects: a config built in code, its RootCAs and server
// name in a *tls.Config, connects verified; the DSN path and this one agree.
func TestFromConfigConnects(t *testing.T) {
	env := scenarios.Get(t)
	pem, err := os.ReadFile(env.certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = testenv.MySQLUser, testenv.MySQLPassword, "tcp", testenv.Addr(env.servers[1].Port), testenv.MySQLDatabase
	cfg.TLS = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	c, err := NewConnectorFromConfig(cfg, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := Verify(ctx, db)
	if err != nil || !st.Encrypted {
		t.Fatalf("%+v %v", st, err)
	}
	// The same pool, but a name the certificate does not hold: verified, so refused.
	cfg.TLS = &tls.Config{RootCAs: pool, ServerName: "not-this-host.example"}
	c, err = NewConnectorFromConfig(cfg, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	db2 := sql.OpenDB(c)
	defer db2.Close()
	if err := db2.PingContext(ctx); !errors.Is(err, sslconn.ErrHostnameMismatch) {
		t.Fatalf("wrong server name: %v, want ErrHostnameMismatch", err)
	}
}

// TestDSNAgreesWithConfig: a DSN and the driver config it parses to
// resolve to the same mode, through NewConnector and NewConnectorFromConfig.
func TestDSNAgreesWithConfig(t *testing.T) {
	registerOnce.Do(func() {
		if err := mysql.RegisterTLSConfig("sslconn-test", &tls.Config{ServerName: "db.internal"}); err != nil {
			t.Fatal(err)
		}
	})
	for _, params := range []string{"", "tls=true", "tls=1", "tls=false", "tls=skip-verify", "tls=preferred",
		"tls=skip-verify&allowFallbackToPlaintext=true", "tls=true&allowFallbackToPlaintext=true", "tls=sslconn-test"} {
		t.Run(params, func(t *testing.T) {
			dsn := "app:Cfg-Secret-pw1@tcp(db.example.com:3306)/shop?" + params
			byDSN, err := NewConnector(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			byConfig, err := NewConnectorFromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := byDSN.Config().Mode(), byConfig.Config().Mode(); a != b {
				t.Fatalf("DSN %v, config %v", a, b)
			}
		})
	}
}

// TestFromConfigParams (#29): the ssl-* keys mysql.ParseDSN leaves in
// cfg.Params apply as in a DSN, and are taken out of the connector's copy,
// so they never reach the server; a misspelt one is ErrInvalidOption;
// options given to NewConnectorFromConfig win over them, as over a DSN's.
func TestFromConfigParams(t *testing.T) {
	ca := url.QueryEscape(testenv.GetCerts(t).CA) // ParseDSN needs a path's '/' escaped
	parse := func(params string) *mysql.Config {
		t.Helper()
		cfg, err := mysql.ParseDSN("app:Cfg-Secret-pw1@tcp(db.example.com:3306)/shop?" + params)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tests := []struct {
		name   string
		params string
		opts   []sslconn.Option
		want   sslconn.Mode
		says   string // in the Config's String
		err    string // an ErrInvalidOption saying this
	}{
		{name: "mode and CA", params: "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + ca, want: sslconn.VerifyIdentity, says: "ca=/"},
		{name: "CA alone", params: "ssl-ca=" + ca, want: sslconn.VerifyCA},
		{name: "libpq names", params: "sslmode=require&sslrootcert=" + ca, want: sslconn.Required},
		{name: "REQUIRED, driver's own kept", params: "ssl-mode=REQUIRED&sql_mode=%27ANSI%27&charset=utf8mb4", want: sslconn.Required},
		{name: "option wins", params: "ssl-mode=REQUIRED&ssl-ca=" + ca, opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity)}, want: sslconn.VerifyIdentity},
		{name: "typo", params: "ssl-mdoe=REQUIRED", err: "did you mean ssl-mode?"},
		{name: "Connector/J's useSSL", params: "useSSL=true", err: "did you mean ssl-mode?"},
		{name: "bad mode", params: "ssl-mode=VERIFY", err: "unknown SSL mode"},
		{name: "contradicts tls=", params: "tls=true&ssl-mode=DISABLED", err: "ssl-mode=DISABLED would not encrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(tt.params)
			before := fmt.Sprint(cfg.Params)
			c, err := NewConnectorFromConfig(cfg, tt.opts...)
			if tt.err != "" {
				if !errors.Is(err, sslconn.ErrInvalidOption) || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "Cfg-Secret-pw1") {
					t.Fatalf("err = %v, want ErrInvalidOption saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Config().Mode(); got != tt.want {
				t.Errorf("mode %v, want %v", got, tt.want)
			}
			if !strings.Contains(c.Config().String(), tt.says) {
				t.Errorf("%s does not say %s", c.Config(), tt.says)
			}
			for k := range c.cfg.Params {
				if strings.HasPrefix(strings.ToLower(k), "ssl") {
					t.Errorf("%s is left for the driver to send to the server", k)
				}
			}
			if strings.Contains(tt.params, "sql_mode") && c.cfg.Params["sql_mode"] != "'ANSI'" {
				t.Errorf("the driver's own parameter was dropped: %v", c.cfg.Params)
			}
			if after := fmt.Sprint(cfg.Params); after != before {
				t.Errorf("the caller's Params changed: %s, was %s", after, before)
			}
		})
	}
}

// TestFromConfigParamsServer (#29): against MariaDB, the ssl-mode in a
// ParseDSN config's Params is the mode applied: REQUIRED connects over TLS
// (and the login would fail with error 1064 had ssl-mode reached the server
// as SQL), the driver's own session variable still applies, and
// VERIFY_IDENTITY with the wrong CA fails with ErrUnknownAuthority.
func TestFromConfigParamsServer(t *testing.T) {
	env := scenarios.Get(t)
	s := env.servers[1]
	open := func(t *testing.T, params string) *sql.DB {
		t.Helper()
		cfg, err := mysql.ParseDSN(dsn(testenv.MySQLUser, testenv.MySQLPassword, "localhost", s.Port, params))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewConnectorFromConfig(cfg, sslconn.WithRetryBudget(-1))
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		t.Cleanup(func() { db.Close() })
		return db
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("REQUIRED", func(t *testing.T) {
		db := open(t, "ssl-mode=REQUIRED&sql_mode=%27ANSI_QUOTES%27")
		st, err := Verify(ctx, db)
		if err != nil || !st.Encrypted || st.Mode != sslconn.Required {
			t.Fatalf("%+v %v, want REQUIRED, encrypted", st, err)
		}
		var mode string
		if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || mode != "ANSI_QUOTES" {
			t.Fatalf("sql_mode %q %v: the driver's own parameter did not apply", mode, err)
		}
	})
	t.Run("VERIFY_IDENTITY, right CA", func(t *testing.T) {
		st, err := Verify(ctx, open(t, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+url.QueryEscape(env.certs.CA)))
		if err != nil || !st.Encrypted || st.Mode != sslconn.VerifyIdentity {
			t.Fatalf("%+v %v", st, err)
		}
	})
	t.Run("VERIFY_IDENTITY, wrong CA", func(t *testing.T) {
		err := open(t, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+url.QueryEscape(env.certs.OtherCA)).PingContext(ctx)
		if !errors.Is(err, sslconn.ErrUnknownAuthority) {
			t.Fatalf("%v, want ErrUnknownAuthority", err)
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			t.Fatalf("the server answered: %v", err)
		}
	})
}
