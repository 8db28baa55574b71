package mysqlssl

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// certEnv is one MariaDB for the certificates and servers of issue #17,
// started on the first test that needs it. Its certificate is swapped per
// case (FLUSH SSL, milliseconds); it is restarted only to become the
// legacy server and back. Its OpenSSL runs at security level 0 so that it
// can serve the SHA-1-signed certificate; it asks for (but does not
// require) a client certificate, as MariaDB does with ssl-ca set.
type certEnv struct {
	certs *testenv.Certs
	s     *testenv.Server
}

var certServer = testenv.NewLazy(func() (*certEnv, error) {
	c, err := makeCerts()
	if err != nil {
		return nil, err
	}
	s, err := testenv.StartMariaDB(certTLS(c))
	if err != nil {
		return nil, err
	}
	return &certEnv{c, s}, nil
})

func certTLS(c *testenv.Certs) testenv.TLS {
	return testenv.TLS{Cert: c.SAN, CA: c.CA, Weak: true, Swappable: true}
}

// legacyTLS is a TLS 1.0-only instance offering only AES256-SHA (RSA key
// exchange), as older MySQL builds and ssl_cipher=ALL:@SECLEVEL=0
// instances can be.
func legacyTLS(c *testenv.Certs) testenv.TLS {
	t := certTLS(c)
	t.Versions, t.Ciphers = "TLSv1", "AES256-SHA"
	return t
}

// in returns the server set up as want (certificate aside), restarting it
// if an earlier test left it otherwise.
func (e *certEnv) in(t *testing.T, want testenv.TLS) *testenv.Server {
	t.Helper()
	want.Cert = e.s.TLS.Cert
	if e.s.TLS != want {
		if err := e.s.Restart(want); err != nil {
			t.Fatal(err)
		}
	}
	return e.s
}

// firstConnect opens d with the default retry budget and pings once,
// reporting the error and how many retries the callback saw, or dials
// beyond the first were made.
func firstConnect(t *testing.T, d string, opts ...sslconn.Option) (int32, error) {
	t.Helper()
	var retries, dials atomic.Int32
	var dialer net.Dialer
	db, err := Open(d, append(opts,
		sslconn.WithRetryCallback(func(sslconn.RetryEvent) { retries.Add(1) }),
		sslconn.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		}))...)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	// A safety net, not a timing assertion: a retried error would take the
	// whole budget (3 minutes); the counts say whether it was.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = db.PingContext(ctx)
	return retries.Load() + max(dials.Load()-1, 0), err
}

// checkCase asserts that err is the case's at once: its sentinel, no
// retry, not retryable, and the text naming the certificate and the fix.
func checkCase(t *testing.T, err error, retries int32, kind string, says []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("connected; want %s", kind)
	}
	if got := core.KindName(err); got != kind {
		t.Fatalf("%s, want %s: %v", got, kind, err)
	}
	if retries != 0 {
		t.Errorf("retried %d times: %v", retries, err)
	}
	if !core.IsPermanent(err) {
		t.Errorf("retryable: %v", err)
	}
	msg := err.Error()
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not say %q", msg, s)
		}
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%q holds a password", msg)
		}
	}
}

// TestCertificateCases (#17, items 1, 2, 5, 7, 8): each certificate fails
// at once with its sentinel, names the certificate at fault and says
// what fixes it; the same server with the right certificate connects.
func TestCertificateCases(t *testing.T) {
	e := certServer.Get(t)
	s := e.in(t, certTLS(e.certs))
	for _, tc := range testenv.CertCases(e.certs) {
		t.Run(tc.Name, func(t *testing.T) {
			if err := s.SetCert(tc.Server); err != nil {
				t.Fatal(err)
			}
			for _, mode := range tc.Modes {
				d := appDSN(s, "localhost", "ssl-mode="+mode+"&ssl-ca="+tc.CA)
				if tc.AtConfig {
					_, err := NewConnector(d)
					checkCase(t, err, 0, tc.Kind, tc.Says, testenv.MySQLPassword)
					continue
				}
				retries, err := firstConnect(t, d)
				t.Logf("%s: %v", mode, err)
				checkCase(t, err, retries, tc.Kind, append(tc.Says[:len(tc.Says):len(tc.Says)], mode, "localhost"), testenv.MySQLPassword)
			}
			if tc.RequiredConnects {
				if got, st, err := result(t, appDSN(s, "localhost", "ssl-mode=REQUIRED")); got != "TLS" {
					t.Fatalf("REQUIRED: %s %+v %v", got, st, err)
				}
			}
		})
	}
	t.Run("the right certificate", func(t *testing.T) {
		if err := s.SetCert(e.certs.SAN); err != nil {
			t.Fatal(err)
		}
		if got, st, err := result(t, appDSN(s, "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+e.certs.CA)); got != "TLS" {
			t.Fatalf("%s %+v %v", got, st, err)
		}
	})
}

// TestClientCertRequiredAccount (#17 item 3, #29): an account created
// REQUIRE X509 reached without a client certificate is refused with 1045,
// as a wrong password is, in the same bytes (measured below). After a
// handshake in which the server asked for a certificate and got none, the
// error names both causes, the wrong password first, and the fix of each;
// it claims neither (not ErrClientCertRequired) and still is the server's
// error. No second login is made for it.
func TestClientCertRequiredAccount(t *testing.T) {
	e := certServer.Get(t)
	s := e.in(t, certTLS(e.certs))
	if err := s.SetCert(e.certs.SAN); err != nil {
		t.Fatal(err)
	}
	x509DSN := func(params string) string {
		return dsn(testenv.MySQLX509User, testenv.MySQLX509Password, "localhost", s.Port, params)
	}
	// both checks the error that names both causes.
	both := func(t *testing.T, err error, retries int32, says ...string) {
		t.Helper()
		checkCase(t, err, retries, "", append([]string{"localhost", "check the user name and password", "set ssl-cert and ssl-key", "1045"}, says...),
			testenv.MySQLX509Password, "Wrong-pw-123")
		msg := err.Error()
		pw, cert := strings.Index(msg, "password is wrong"), strings.Index(msg, "requires a client certificate (REQUIRE X509")
		if pw < 0 || cert < pw {
			t.Errorf("%q does not name the wrong password, then the certificate", msg)
		}
		if errors.Is(err, sslconn.ErrClientCertRequired) {
			t.Errorf("claims ErrClientCertRequired: %v", err)
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1045 {
			t.Fatalf("not the server's 1045: %v", err)
		}
	}
	for _, mode := range []string{"PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"} {
		t.Run(mode, func(t *testing.T) {
			retries, err := firstConnect(t, x509DSN("ssl-mode="+mode+"&ssl-ca="+e.certs.CA))
			t.Logf("%v", err)
			both(t, err, retries, mode)
		})
	}
	t.Run("set by options", func(t *testing.T) {
		// The mode is named as the user set it: an option.
		_, err := firstConnect(t, x509DSN(""), sslconn.WithMode(sslconn.Disabled))
		if err == nil || !strings.Contains(err.Error(), "set sslconn.WithMode(sslconn.Required) or stronger") {
			t.Errorf("the fix does not name sslconn.WithMode: %v", err)
		}
	})
	t.Run("with a client certificate", func(t *testing.T) {
		got, _, err := result(t, x509DSN("ssl-mode=VERIFY_IDENTITY&ssl-ca="+e.certs.CA+"&ssl-cert="+e.certs.Client.Cert+"&ssl-key="+e.certs.Client.Key))
		if got != "TLS" {
			t.Fatalf("%s %v", got, err)
		}
	})
	t.Run("wrong password, no client certificate", func(t *testing.T) {
		// An account without REQUIRE X509: not ErrClientCertRequired.
		d := dsn(testenv.MySQLUser, "Wrong-pw-123", "localhost", s.Port, "ssl-mode=REQUIRED")
		retries, err := firstConnect(t, d)
		both(t, err, retries, "REQUIRED")
	})
	t.Run("wrong password with a client certificate", func(t *testing.T) {
		d := dsn(testenv.MySQLX509User, "Wrong-pw-123", "localhost", s.Port,
			"ssl-mode=REQUIRED&ssl-cert="+e.certs.Client.Cert+"&ssl-key="+e.certs.Client.Key)
		retries, err := firstConnect(t, d)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1045 || errors.Is(err, sslconn.ErrClientCertRequired) || retries != 0 ||
			strings.Contains(err.Error(), "REQUIRE X509") {
			t.Fatalf("%v (%d retries)", err, retries)
		}
	})
	t.Run("DISABLED", func(t *testing.T) {
		// The plaintext login is refused; the same login over TLS is
		// too, after the server asked for a certificate.
		retries, err := firstConnect(t, x509DSN("ssl-mode=DISABLED"))
		t.Logf("%v", err)
		if retries != 1 {
			t.Errorf("%d logins after the first, want 1 over TLS", retries)
		}
		both(t, err, 0, "DISABLED", "ssl-mode=REQUIRED")
	})
	t.Run("the server's answers", func(t *testing.T) {
		// Why the error names both: a wrong password and a REQUIRE X509
		// account without a certificate get the same 1045, in TLS and in
		// plaintext, save the user name (MariaDB 10.11: 'Access denied for
		// user ... (using password: YES)').
		answer := func(user, pw, params string) string {
			db, err := sql.Open("mysql", dsn(user, pw, "localhost", s.Port, params))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = db.PingContext(ctx)
			var me *mysql.MySQLError
			if !errors.As(err, &me) {
				t.Fatalf("%s: %v", user, err)
			}
			return fmt.Sprintf("%d %s %s", me.Number, me.SQLState, strings.Replace(me.Message, user, "USER", 1))
		}
		for _, params := range []string{"tls=skip-verify", "tls=false"} {
			pw, cert := answer(testenv.MySQLUser, "Wrong-pw-123", params), answer(testenv.MySQLX509User, testenv.MySQLX509Password, params)
			t.Logf("%s: wrong password %q; REQUIRE X509 without a certificate %q", params, pw, cert)
			if pw != cert {
				t.Errorf("%s: the server tells them apart now: %q, %q; classify could too", params, pw, cert)
			}
		}
	})
}

// TestLegacyServer (#17, item 4): a TLS 1.0-only MariaDB offering only
// AES256-SHA is reached with tls-version=TLSv1 alone (the legacy suites
// come with a minimum below TLS 1.2); without tls-version the error says
// which to set.
func TestLegacyServer(t *testing.T) {
	e := certServer.Get(t)
	s := e.in(t, legacyTLS(e.certs))
	if err := s.SetCert(e.certs.SAN); err != nil {
		t.Fatal(err)
	}
	got, st, err := result(t, appDSN(s, "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+e.certs.CA+"&tls-version=TLSv1"))
	if got != "TLS" || st.Version != "TLSv1" || st.Cipher != "TLS_RSA_WITH_AES_256_CBC_SHA" {
		t.Fatalf("tls-version=TLSv1: %s %+v %v", got, st, err)
	}
	retries, err := firstConnect(t, appDSN(s, "localhost", "ssl-mode=VERIFY_IDENTITY&ssl-ca="+e.certs.CA))
	t.Logf("%v", err)
	checkCase(t, err, retries, "ErrTLSVersion", []string{"tls-version=TLSv1"}, testenv.MySQLPassword)
}

// TestWatchCertRequest: a connection's tls.Config notes that the server
// asked for a client certificate only when none was sent, and that the
// handshake completed; the driver runs the handshake without a context, as
// here.
func TestWatchCertRequest(t *testing.T) {
	certs := testenv.GetCerts(t)
	serverCert, err := tls.LoadX509KeyPair(certs.SAN.Cert, certs.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		auth   tls.ClientAuthType
		client bool
		want   bool
	}{
		{"not asked", tls.NoClientCert, false, false},
		{"asked, none configured", tls.RequestClientCert, false, true},
		{"asked, one configured", tls.RequestClientCert, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					_ = c.(*tls.Conn).Handshake()
					c.Close()
				}
			}()
			opts := []sslconn.Option{sslconn.WithMode(sslconn.Required)}
			if tt.client {
				opts = append(opts, sslconn.WithClientCertFiles(certs.Client.Cert, certs.Client.Key))
			}
			cfg, err := core.Resolve(core.Spec{}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			tc := cfg.Settings().TLSConfig(sslconn.Required, l.Addr().String())
			seen := watchHandshake(tc)
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if err := tls.Client(raw, tc).Handshake(); err != nil {
				t.Fatal(err)
			}
			if seen.asked.Load() != tt.want || !seen.handshake.Load() {
				t.Fatalf("asked %v, want %v; handshake %v", seen.asked.Load(), tt.want, seen.handshake.Load())
			}
		})
	}
}
