package mssqlssl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/sslconn"
)

// certFile writes a self-signed certificate (PEM) for tests that need a
// certificate file but no server, so that they run under -short without
// the harness's certificates.
func certFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "server.pem")
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestConflictTable: every go-mssqldb TLS setting against every ssl-mode
// (and none), through NewConnector alone. Without ssl-mode the driver's
// setting maps onto a mode: none PREFERRED, encrypt=disable DISABLED,
// encrypt=false PREFERRED (its login-only encryption becomes
// opportunistic), encrypt=true VERIFY_IDENTITY, with
// TrustServerCertificate=true REQUIRED, encrypt=strict as encrypt=true plus
// TDS 8. An explicit mode refines it, and is an ErrInvalidOption naming
// ssl-mode, the driver's setting and the mode only when they contradict:
// TLS off and the mode encrypts, TLS on and DISABLED, verification off and
// VERIFY_CA or VERIFY_IDENTITY. encrypt=strict below REQUIRED is the
// adapter's own error, naming encrypt.
func TestConflictTable(t *testing.T) {
	const pw = "Conflict-Secret-7"
	const (
		conflict = "conflict" // ErrInvalidOption, Option ssl-mode
		strict   = "strict"   // ErrInvalidOption, Option encrypt
	)
	var (
		dis = sslconn.Disabled.String()
		pre = sslconn.Preferred.String()
		req = sslconn.Required.String()
		vca = sslconn.VerifyCA.String()
		vid = sslconn.VerifyIdentity.String()
	)
	// Columns: no ssl-mode, then ssl-mode=DISABLED ... VERIFY_IDENTITY.
	explicit := []sslconn.Mode{0, sslconn.Disabled, sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity}
	rows := []struct {
		native string // the DSN's own parameters, as the error must name them
		want   [6]string
	}{
		{"", [6]string{pre, dis, pre, req, vca, vid}},
		{"encrypt=disable", [6]string{dis, dis, conflict, conflict, conflict, conflict}},
		{"encrypt=false", [6]string{pre, dis, pre, req, vca, vid}},
		{"encrypt=true", [6]string{vid, conflict, pre, req, vca, vid}},
		{"encrypt=true&TrustServerCertificate=true", [6]string{req, conflict, pre, req, conflict, conflict}},
		{"encrypt=strict", [6]string{vid, conflict, strict, req, vca, vid}},
		{"encrypt=strict&TrustServerCertificate=true", [6]string{req, conflict, strict, req, conflict, conflict}},
	}
	for _, row := range rows {
		for i, mode := range explicit {
			var params []string
			if row.native != "" {
				params = append(params, row.native)
			}
			name := "no-ssl-mode"
			if mode != 0 {
				params = append(params, "ssl-mode="+mode.String())
				name = mode.String()
			}
			native := row.native
			if native == "" {
				native = "unset"
			}
			want := row.want[i]
			t.Run(native+"/"+name, func(t *testing.T) {
				dsn := "sqlserver://sa:" + pw + "@" + "localhost:1433?database=master"
				if len(params) > 0 {
					dsn += "&" + strings.Join(params, "&")
				}
				c, err := NewConnector(dsn)
				switch want {
				case conflict:
					if err == nil {
						t.Fatalf("resolved to %s, want an error", c.Config().Mode())
					}
					matrix.CheckConflict(t, err, row.native, mode, pw)
				case strict:
					if err == nil {
						t.Fatalf("resolved to %s, want an error", c.Config().Mode())
					}
					var e *sslconn.Error
					if !errors.Is(err, sslconn.ErrInvalidOption) || !errors.As(err, &e) {
						t.Fatalf("not an ErrInvalidOption *sslconn.Error: %v", err)
					}
					if e.Option != "encrypt" {
						t.Errorf("Option %q, want encrypt: %v", e.Option, err)
					}
					for _, s := range []string{"encrypt=strict", mode.String()} {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("%q does not name %q", err, s)
						}
					}
					if strings.Contains(err.Error(), pw) {
						t.Errorf("password in %q", err)
					}
				default:
					if err != nil {
						t.Fatalf("want %s, got %v", want, err)
					}
					if got := c.Config().Mode().String(); got != want {
						t.Fatalf("mode %s, want %s", got, want)
					}
				}
			})
		}
	}
}

// TestUnavailable: a port where nothing listens ends, once the retry
// budget or the caller's deadline runs out, in ErrUnavailable that names
// the mode and the address, counts the attempts and keeps the last cause.
func TestUnavailable(t *testing.T) {
	const pw = "Unavailable-Secret-5"
	matrix.RunUnavailable(t, pw, func(ctx context.Context, addr string, mode sslconn.Mode, opts ...sslconn.Option) error {
		db, err := Open("sqlserver://sa:"+pw+"@"+addr+"?database=master&ssl-mode="+mode.String(), opts...)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
}

// TestVerifyThroughProxy: Verify and VerifyConn report the state of the
// connection that carried the query, with a relaying proxy between client
// and server (no address matches the server's).
func TestVerifyThroughProxy(t *testing.T) {
	env := scenarios.Get(t)
	tests := []struct {
		name      string
		server    int
		mode      sslconn.Mode
		encrypted bool
	}{
		{"VERIFY_IDENTITY", 1, sslconn.VerifyIdentity, true},
		{"REQUIRED, TLS forced", 2, sslconn.Required, true},
		{"PREFERRED", 1, sslconn.Preferred, true},
		{"PREFERRED, server without TLS", 0, sslconn.Preferred, false},
		{"DISABLED", 1, sslconn.Disabled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := mitm.Start(mitm.Config{Engine: mitm.TDS, Attack: mitm.Relay, Upstream: env.servers[tt.server].Addr()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			db, err := Open("sqlserver://"+user+":"+password+"@"+p.Addr()+"?database=master&ssl-mode="+tt.mode.String()+"&ssl-ca="+env.certs.CA,
				sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			check := func(what string, st sslconn.Status, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				matrix.CheckStatus(t, what, st, tt.encrypted)
				matrix.CheckMode(t, what, st, tt.mode)
			}
			st, err := Verify(ctx, db)
			check("Verify", st, err)
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st, err = VerifyConn(ctx, conn)
			check("VerifyConn", st, err)
		})
	}
}

// TestDriverRegistered: the database/sql driver name, and its DSN errors
// at sql.Open (no server needed).
func TestDriverRegistered(t *testing.T) {
	if !slices.Contains(sql.Drivers(), "mssqlssl") {
		t.Fatalf("mssqlssl not among %v", sql.Drivers())
	}
	_, err := sql.Open("mssqlssl", "sqlserver://sa:Open-Secret-3@localhost?encrypt=disable&ssl-mode=REQUIRED")
	var e *sslconn.Error
	if !errors.Is(err, sslconn.ErrInvalidOption) || !errors.As(err, &e) || e.Option != "ssl-mode" || strings.Contains(err.Error(), "Open-Secret-3") {
		t.Fatalf("sql.Open with a conflicting DSN: %v", err)
	}
}

// TestDriverName: sql.Open("mssqlssl", dsn) connects in the DSN's mode.
func TestDriverName(t *testing.T) {
	env := scenarios.Get(t)
	for _, tt := range []struct {
		server    int
		mode      sslconn.Mode
		encrypted bool
	}{
		{1, sslconn.VerifyIdentity, true},
		{0, sslconn.Preferred, false},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			db, err := sql.Open("mssqlssl", urlDSN(env.servers[tt.server], "localhost", "ssl-mode="+tt.mode.String()+"&ssl-ca="+env.certs.CA))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var version string
			if err := db.QueryRowContext(ctx, "SELECT @@VERSION").Scan(&version); err != nil || !strings.Contains(version, "SQL Server") {
				t.Fatalf("SELECT @@VERSION: %q %v", version, err)
			}
			st, err := Verify(ctx, db)
			if err != nil || st.Encrypted != tt.encrypted || (st.Encrypted && st.Version == "") {
				t.Fatalf("Verify: %+v %v, want encrypted=%t", st, err, tt.encrypted)
			}
		})
	}
}
