package mysqlssl

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/fakemysql"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

const fakePassword = "fake-s3cret-pw"

// What an attacker on the path obtains from one login.
type obtains int

const (
	getsNothing  obtains = iota // not even a scramble: the client stopped first
	getsScramble                // a scramble: offline guessing only
	getsPassword                // the password itself
)

func (o obtains) String() string { return [...]string{"nothing", "a scramble", "the password"}[o] }

func obtained(o fakemysql.Obtained) obtains {
	for _, pw := range o.Passwords {
		if pw == fakePassword {
			return getsPassword
		}
	}
	if len(o.Scrambles) > 0 {
		return getsScramble
	}
	return getsNothing
}

var (
	otherKeyOnce sync.Once
	otherKeyPEM  []byte
	otherKeyErr  error
)

// keyFiles writes the fake server's public key, and another (the real
// server's, which the attacker does not hold), as PEM files.
func keyFiles(t *testing.T) (own, other string) {
	t.Helper()
	k, err := fakemysql.Key()
	if err != nil {
		t.Fatal(err)
	}
	otherKeyOnce.Do(func() {
		var o *rsa.PrivateKey
		if o, otherKeyErr = rsa.GenerateKey(rand.Reader, 2048); otherKeyErr == nil {
			otherKeyPEM = fakemysql.PublicKeyPEM(o)
		}
	})
	if otherKeyErr != nil {
		t.Fatal(otherKeyErr)
	}
	dir := t.TempDir()
	own, other = filepath.Join(dir, "own.pem"), filepath.Join(dir, "other.pem")
	for p, data := range map[string][]byte{own: fakemysql.PublicKeyPEM(k), other: otherKeyPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return own, other
}

func startFake(t *testing.T, cfg fakemysql.Config) *fakemysql.Server {
	t.Helper()
	cfg.Password = fakePassword
	s, err := fakemysql.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// pingFake opens dsnParams against s and pings once.
func pingFake(t *testing.T, s *fakemysql.Server, params string, opts ...sslconn.Option) error {
	t.Helper()
	db, err := Open("app:"+fakePassword+"@tcp("+s.Addr()+")/app?"+params, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return pingDB(t, db)
}

// pingConfig opens cfg through NewConnectorFromConfig and pings once.
func pingConfig(t *testing.T, cfg *mysql.Config) error {
	t.Helper()
	c, err := NewConnectorFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pingDB(t, sql.OpenDB(c))
}

// pingDB pings db once, and closes it.
func pingDB(t *testing.T, db *sql.DB) error {
	t.Helper()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := db.PingContext(ctx)
	if err != nil && strings.Contains(err.Error(), fakePassword) {
		t.Errorf("the error shows the password: %v", err)
	}
	return err
}

// TestStripperObtains: a MySQL 8 server without TLS (what a TLS stripper
// presents) asks for full authentication, or for the cleartext password,
// or for a native scramble. Per mode and option, it must obtain what the
// docs (security.md, mysql.md) say: the password only where the user
// opted in (get-server-public-key, or DISABLED with
// allowCleartextPasswords), a scramble where the login proves the password
// without revealing it, nothing where the mode needs TLS. A refusal is an
// *sslconn.Error naming the options, made on the first connection (not
// retried).
func TestStripperObtains(t *testing.T) {
	own, other := keyFiles(t)
	modes := map[string]string{"default": "", "DISABLED": "ssl-mode=DISABLED", "PREFERRED": "ssl-mode=PREFERRED",
		"REQUIRED": "ssl-mode=REQUIRED", "VERIFY_IDENTITY": "ssl-mode=VERIFY_IDENTITY"}
	plain := func(mode string) bool { return mode == "default" || mode == "DISABLED" || mode == "PREFERRED" }
	type cell struct {
		server fakemysql.Config
		option string
		// want for the plaintext modes, by mode; the others get nothing
		// and ErrServerNoTLS.
		want     func(mode string) obtains
		connects func(mode string) bool
		refused  bool // a plaintext mode fails with the guard's error (full auth)
	}
	always := func(o obtains) func(string) obtains { return func(string) obtains { return o } }
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	cells := map[string]cell{
		"full-auth/none":                    {option: "", want: always(getsScramble), connects: no, refused: true},
		"full-auth/get-server-public-key":   {option: "get-server-public-key=true", want: always(getsPassword), connects: yes},
		"full-auth/allowPublicKeyRetrieval": {option: "allowPublicKeyRetrieval=true", want: always(getsPassword), connects: yes},
		"full-auth/server-public-key-path":  {option: "server-public-key-path=" + other, want: always(getsScramble), connects: no},
		"full-auth/path-to-its-own-key":     {option: "server-public-key-path=" + own, want: always(getsPassword), connects: yes},
		"full-auth/allowCleartextPasswords": {option: "allowCleartextPasswords=true", want: always(getsScramble), connects: no, refused: true},
		"clear-greeting/none": {server: fakemysql.Config{Plugin: fakemysql.Clear},
			want: always(getsScramble), connects: yes}, // the driver answers with its default, mysql_native_password
		"clear-greeting/allowCleartextPasswords": {server: fakemysql.Config{Plugin: fakemysql.Clear}, option: "allowCleartextPasswords=true",
			want: func(m string) obtains {
				return map[bool]obtains{true: getsPassword, false: getsNothing}[m == "DISABLED"]
			},
			connects: func(m string) bool { return m == "DISABLED" }, refused: true},
		"clear-switch/allowCleartextPasswords": {server: fakemysql.Config{SwitchTo: fakemysql.Clear}, option: "allowCleartextPasswords=true",
			want: func(m string) obtains {
				return map[bool]obtains{true: getsPassword, false: getsScramble}[m == "DISABLED"]
			},
			connects: func(m string) bool { return m == "DISABLED" }, refused: true},
		"sha256/none": {server: fakemysql.Config{Plugin: fakemysql.SHA256}, want: always(getsNothing), connects: no, refused: true},
		"sha256/get-server-public-key": {server: fakemysql.Config{Plugin: fakemysql.SHA256}, option: "get-server-public-key=true",
			want: always(getsPassword), connects: yes},
		"sha256/server-public-key-path": {server: fakemysql.Config{Plugin: fakemysql.SHA256}, option: "server-public-key-path=" + other,
			want: always(getsNothing), connects: no},
		"native/none": {server: fakemysql.Config{Plugin: fakemysql.Native}, want: always(getsScramble), connects: yes},
	}
	for name, c := range cells {
		t.Run(name, func(t *testing.T) {
			for mode, mp := range modes {
				t.Run(mode, func(t *testing.T) {
					s := startFake(t, c.server)
					params := strings.Trim(mp+"&"+c.option, "&")
					err := pingFake(t, s, params)
					got := obtained(s.Obtained())
					want, connects := getsNothing, false
					if plain(mode) {
						want, connects = c.want(mode), c.connects(mode)
					}
					if got != want {
						t.Errorf("the attacker obtained %s, want %s (%v)", got, want, err)
					}
					if connects != (err == nil) {
						t.Fatalf("connected: %t, want %t: %v", err == nil, connects, err)
					}
					if n := s.Obtained().Conns; n != 1 && c.refused && err != nil {
						t.Errorf("%d connections for one failure: it was retried", n)
					}
					if err != nil {
						t.Log(err)
					}
					switch {
					case err == nil:
					case !plain(mode):
						if !errors.Is(err, sslconn.ErrServerNoTLS) {
							t.Errorf("got %v, want ErrServerNoTLS", err)
						}
					case c.refused:
						var se *sslconn.Error
						if !errors.As(err, &se) || !errors.Is(err, sslconn.ErrServerRequiresTLS) {
							t.Fatalf("got %v (%T), want an *sslconn.Error of kind ErrServerRequiresTLS", err, err)
						}
						if strings.Contains(c.option, "allowCleartext") && (c.server.Plugin == fakemysql.Clear || c.server.SwitchTo == fakemysql.Clear) {
							if !strings.Contains(err.Error(), "mysql_clear_password") || !strings.Contains(err.Error(), "REQUIRED") {
								t.Errorf("the error does not say what was refused and why: %v", err)
							}
							break
						}
						for _, word := range []string{"get-server-public-key", "allowPublicKeyRetrieval", "server-public-key-path", "attacker"} {
							if !strings.Contains(err.Error(), word) {
								t.Errorf("the error does not name %s: %v", word, err)
							}
						}
						if s.Obtained().KeyRequests > 0 {
							t.Errorf("the key request went out")
						}
					}
				})
			}
		})
	}
}

// TestClearRefusedOnceKnownPlain: PREFERRED connects in plaintext at once
// to an address it knows serves plaintext; the cleartext password is
// refused there too.
func TestClearRefusedOnceKnownPlain(t *testing.T) {
	s := startFake(t, fakemysql.Config{Plugin: fakemysql.Native, SwitchTo: fakemysql.Clear, SwitchFrom: 2})
	db, err := Open("app:" + fakePassword + "@tcp(" + s.Addr() + ")/app?ssl-mode=PREFERRED&allowCleartextPasswords=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0) // every Ping a new connection
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("first connection (native): %v", err)
	}
	err = db.PingContext(ctx)
	if !errors.Is(err, sslconn.ErrServerRequiresTLS) {
		t.Errorf("second connection: got %v, want the guard's refusal", err)
	}
	if got := obtained(s.Obtained()); got == getsPassword {
		t.Errorf("the attacker obtained the password")
	}
}

// TestBareDriverGivesUpPassword documents what the guard changes: the
// driver alone, in its PREFERRED (tls=preferred) and without TLS, fetches
// the stripper's key and sends it the password.
func TestBareDriverGivesUpPassword(t *testing.T) {
	for _, tlsParam := range []string{"preferred", "false"} {
		t.Run(tlsParam, func(t *testing.T) {
			s := startFake(t, fakemysql.Config{})
			db, err := sql.Open("mysql", "app:"+fakePassword+"@tcp("+s.Addr()+")/app?tls="+tlsParam)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := db.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			if got := obtained(s.Obtained()); got != getsPassword {
				t.Fatalf("the bare driver gave up %s; the guard's test would prove nothing", got)
			}
		})
	}
}

// TestImpostorObtains: a MySQL 8 server offering TLS with a certificate
// from another CA. The modes that do not verify encrypt to it, and full
// authentication inside TLS sends the password (as MySQL's own client
// does); the verifying modes refuse its certificate before the login.
func TestImpostorObtains(t *testing.T) {
	certs := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.MITM.Cert, certs.MITM.Key)
	if err != nil {
		t.Fatal(err)
	}
	want := map[sslconn.Mode]obtains{sslconn.Disabled: getsScramble, sslconn.Preferred: getsPassword, sslconn.Required: getsPassword,
		sslconn.VerifyCA: getsNothing, sslconn.VerifyIdentity: getsNothing}
	for _, plugin := range []string{fakemysql.CachingSHA2, fakemysql.Native, fakemysql.Clear} {
		t.Run(plugin, func(t *testing.T) {
			for mode, w := range want {
				t.Run(mode.String(), func(t *testing.T) {
					params := "ssl-mode=" + mode.String()
					if mode >= sslconn.VerifyCA {
						params += "&ssl-ca=" + certs.CA
					}
					switch {
					case plugin == fakemysql.Native && w == getsPassword:
						w = getsScramble
					case plugin == fakemysql.Clear:
						// DISABLED with allowCleartextPasswords: chosen knowingly.
						params += "&allowCleartextPasswords=true"
						if mode == sslconn.Disabled {
							w = getsPassword
						}
					}
					s := startFake(t, fakemysql.Config{Plugin: plugin, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
					err := pingFake(t, s, params)
					if got := obtained(s.Obtained()); got != w {
						t.Errorf("the impostor obtained %s, want %s (%v)", got, w, err)
					}
					switch {
					case mode >= sslconn.VerifyCA:
						if !errors.Is(err, sslconn.ErrUnknownAuthority) {
							t.Errorf("got %v, want ErrUnknownAuthority", err)
						}
					case mode == sslconn.Disabled && plugin == fakemysql.CachingSHA2:
						if !errors.Is(err, sslconn.ErrServerRequiresTLS) {
							t.Errorf("got %v, want the guard's ErrServerRequiresTLS", err)
						}
					case err != nil:
						t.Errorf("want connected, got %v", err)
					}
				})
			}
		})
	}
}

// TestPublicKeyParams: the opt-ins parse in any spelling, and a bad value
// or key file is an error naming the parameter.
func TestPublicKeyParams(t *testing.T) {
	own, _ := keyFiles(t)
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for params, want := range map[string]string{
		"get-server-public-key=true":                          "",
		"get_server_public_key=1":                             "",
		"allowPublicKeyRetrieval=true":                        "",
		"server-public-key-path=" + own:                       "",
		"get-server-public-key=maybe":                         "get-server-public-key",
		"server-public-key-path=" + bad:                       "server-public-key-path",
		"server-public-key-path=/nonexistent/key.pem":         "server-public-key-path",
		"server-public-key-path=/dev/zero":                    "server-public-key-path",
		"server-public-key-path=" + own + "&serverPubKey=foo": "server-public-key-path",
	} {
		t.Run(params, func(t *testing.T) {
			c, err := NewConnector("app:pw@tcp(127.0.0.1:1)/app?" + params)
			if want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(params, "path") != (c.cfg.ServerPubKey != "") {
					t.Errorf("ServerPubKey %q", c.cfg.ServerPubKey)
				}
				if strings.Contains(params, "path") == c.keyFetch {
					t.Errorf("keyFetch %t", c.keyFetch)
				}
				if len(c.cfg.Params) > 0 {
					t.Errorf("the driver would send %v to the server as session variables", c.cfg.Params)
				}
				return
			}
			var se *sslconn.Error
			if !errors.As(err, &se) || !errors.Is(err, sslconn.ErrInvalidOption) || se.Option != want {
				t.Fatalf("got %v, want ErrInvalidOption naming %s", err, want)
			}
		})
	}
}

// dribbleConn hands the driver one byte per Read: the guard must follow
// packets split anywhere.
type dribbleConn struct{ net.Conn }

func (c dribbleConn) Read(p []byte) (int, error) { return c.Conn.Read(p[:min(len(p), 1)]) }

// TestGuardSplitReads: the guard's refusals hold when the server's
// packets arrive a byte at a time.
func TestGuardSplitReads(t *testing.T) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return dribbleConn{c}, nil
	}
	for name, cfg := range map[string]fakemysql.Config{"full-auth": {}, "clear-switch": {SwitchTo: fakemysql.Clear}} {
		t.Run(name, func(t *testing.T) {
			s := startFake(t, cfg)
			err := pingFake(t, s, "ssl-mode=PREFERRED&allowCleartextPasswords=true", sslconn.WithDialer(dial))
			if !errors.Is(err, sslconn.ErrServerRequiresTLS) {
				t.Errorf("got %v, want the guard's refusal", err)
			}
			if got := obtained(s.Obtained()); got == getsPassword {
				t.Errorf("the attacker obtained the password")
			}
		})
	}
}

// FuzzAuthGuard: whatever a server sends and however the client's packets
// look, the guard neither panics nor lets a key request through without
// an opt-in after a request for full authentication.
func FuzzAuthGuard(f *testing.F) {
	f.Add([]byte("\x0a\x00\x00\x00\x0a8.0\x00"), []byte("\x01\x00\x00\x03\x02"), uint8(3))
	f.Add([]byte("\x02\x00\x00\x02\x01\x04"), []byte("\x21\x00\x00\x01"), uint8(1))
	f.Fuzz(func(t *testing.T, server, client []byte, cut uint8) {
		var refused atomic.Pointer[sslconn.Error]
		g := &authGuard{policy: authPolicy{mode: sslconn.Preferred}, refused: &refused}
		for len(server) > 0 {
			n := min(len(server), int(cut%16)+1)
			g.serverBytes(server[:n])
			server = server[n:]
		}
		_ = g.clientPacket(client)
		if !g.done.Load() && g.responded && g.plugin == pluginCachingSHA2 && g.fullAuth {
			if g.clientPacket([]byte{1, 0, 0, 3, 2}) == nil {
				t.Fatal("a key request went through")
			}
		}
	})
}

// TestServerPubKeyFromConfig: a *mysql.Config with the server's key
// registered (ServerPubKey) logs in without TLS: the driver encrypts to
// that key and fetches nothing.
func TestServerPubKeyFromConfig(t *testing.T) {
	k, err := fakemysql.Key()
	if err != nil {
		t.Fatal(err)
	}
	mysql.RegisterServerPubKey("sslconn-test-fake", &k.PublicKey)
	defer mysql.DeregisterServerPubKey("sslconn-test-fake")
	s := startFake(t, fakemysql.Config{})
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "app", fakePassword, "tcp", s.Addr(), "app"
	cfg.ServerPubKey = "sslconn-test-fake"
	if err := pingConfig(t, cfg); err != nil {
		t.Fatal(err)
	}
	if o := s.Obtained(); o.KeyRequests != 0 || obtained(o) != getsPassword {
		t.Errorf("key requests %d, obtained %s; want 0 and the password (the server holds the key)", o.KeyRequests, obtained(o))
	}
}

// TestPublicKeyParamsFromConfig: the public key parameters of a DSN parsed
// by mysql.ParseDSN (left in cfg.Params) opt in through
// NewConnectorFromConfig as through a DSN, and never reach the server.
func TestPublicKeyParamsFromConfig(t *testing.T) {
	own, _ := keyFiles(t)
	for name, tc := range map[string]struct {
		params string
		want   obtains
	}{
		"none":                    {"", getsScramble},
		"get-server-public-key":   {"&get-server-public-key=true", getsPassword},
		"allowPublicKeyRetrieval": {"&allowPublicKeyRetrieval=true", getsPassword},
		"server-public-key-path":  {"&server-public-key-path=" + url.QueryEscape(own), getsPassword},
	} {
		t.Run(name, func(t *testing.T) {
			s := startFake(t, fakemysql.Config{})
			cfg, err := mysql.ParseDSN("app:" + fakePassword + "@tcp(" + s.Addr() + ")/app?ssl-mode=PREFERRED" + tc.params)
			if err != nil {
				t.Fatal(err)
			}
			err = pingConfig(t, cfg)
			if got := obtained(s.Obtained()); got != tc.want {
				t.Errorf("the server obtained %s; want %s (ping: %v)", got, tc.want, err)
			}
			if tc.want != getsPassword && !strings.Contains(fmt.Sprint(err), "get-server-public-key") {
				t.Errorf("err = %v; want the guard's error naming get-server-public-key", err)
			}
			if tc.want == getsPassword && err != nil {
				t.Errorf("ping: %v", err)
			}
		})
	}
}
