package core

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

func TestResolveParams(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ApsaraDB-CA-Chain.pem")
	if err := os.WriteFile(ca, []byte(testCAPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		query    string
		wantMode Mode
		says     []string // in the Config's String
	}{
		{name: "canonical", query: "ssl-mode=VERIFY_CA&ssl-ca=" + ca, wantMode: VerifyCA, says: []string{"ca=" + ca}},
		{name: "underscores", query: "ssl_mode=required&ssl_server_name=db.example.com", wantMode: Required, says: []string{`server-name="db.example.com"`}},
		{name: "Connector/J", query: "sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:" + ca + "&trustCertificateKeyStorePassword=apsaradb&enabledTLSProtocols=TLSv1.2,TLSv1.3",
			wantMode: VerifyIdentity, says: []string{"ca=" + ca, "tls=TLSv1.2-TLSv1.3"}},
		{name: "libpq mode", query: "sslmode=verify-full", wantMode: VerifyIdentity},
		{name: "legacy TLS and ciphers", query: "tls-version=TLSv1,TLSv1.1&ssl-cipher=AES128-SHA:ECDHE-RSA-AES128-SHA", wantMode: Preferred, says: []string{"tls=TLSv1-TLSv1.1"}},
		{name: "CA alone", query: "ssl-ca=" + ca, wantMode: VerifyCA},
		{name: "none", query: "", wantMode: Preferred},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			cfg, err := Resolve(Spec{Params: q})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Mode() != tt.wantMode {
				t.Errorf("mode %v, want %v", cfg.Mode(), tt.wantMode)
			}
			for _, s := range tt.says {
				if !strings.Contains(cfg.String(), s) {
					t.Errorf("%s does not say %s", cfg, s)
				}
			}
		})
	}
	// A client certificate given as two parameters is one certificate.
	q, _ := url.ParseQuery("ssl-cert=/nonexistent/c.pem&ssl-key=/nonexistent/k.pem")
	if _, err := Resolve(Spec{Params: q}); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "cannot read client certificate") {
		t.Errorf("cert and key parameters: %v", err)
	}
}

func TestResolveParamErrors(t *testing.T) {
	tests := []struct{ query, option, says string }{
		{"ssl-mode=on", "ssl-mode", "VERIFY_IDENTITY"},
		{"ssl-mode=", "ssl-mode", "empty"},
		{"tls-version=TLSv1.4", "tls-version", "TLSv1.4"},
		{"ssl-cipher=NOT-A-CIPHER", "ssl-cipher", "NOT-A-CIPHER"},
		{"ssl-ca=", "ssl-ca", "empty"},
		{"ssl-ca-password=s3cret&ssl-ca=/nonexistent.jks", "ssl-ca", "nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			_, err := Resolve(Spec{Params: q, Secrets: []string{"s3cret"}})
			if !errors.Is(err, ErrInvalidOption) && !errors.Is(err, ErrBadCA) || !strings.Contains(err.Error(), tt.option) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

// TestConflictRule: an explicit mode refines the driver's setting and
// contradicts it only in the three ways the contract names.
func TestConflictRule(t *testing.T) {
	natives := []struct {
		name string
		mode Mode
		bad  []Mode // explicit modes that contradict it
	}{
		{"unset", 0, nil},
		{"TLS off", Disabled, []Mode{Preferred, Required, VerifyCA, VerifyIdentity}},
		{"opportunistic", Preferred, nil},
		{"TLS on, verification off", Required, []Mode{Disabled, VerifyCA, VerifyIdentity}},
		{"TLS on, verified", VerifyIdentity, []Mode{Disabled}},
	}
	for _, n := range natives {
		for _, m := range Modes {
			t.Run(n.name+"/"+m.String(), func(t *testing.T) {
				// The mode as a DSN parameter and as an option: the error
				// names it as it was set.
				native := Spec{Native: Native{Mode: n.mode, Setting: "tls=x"}}
				byParam := native
				byParam.Params = url.Values{"ssl-mode": {m.String()}}
				for _, via := range []struct {
					spec         Spec
					opts         []Option
					option, says string
				}{
					{byParam, nil, param.Mode, "ssl-mode=" + m.String()},
					{native, []Option{WithMode(m)}, "sslconn.WithMode", "sslconn.WithMode(sslconn."},
				} {
					cfg, err := Resolve(via.spec, via.opts...)
					if slices.Contains(n.bad, m) {
						var e *Error
						if !errors.As(err, &e) || e.Kind != ErrInvalidOption || e.Option != via.option || !strings.Contains(err.Error(), "tls=x") || !strings.Contains(err.Error(), via.says) {
							t.Fatalf("err = %v, want ErrInvalidOption naming tls=x and %s", err, via.says)
						}
						continue
					}
					if err != nil || cfg.Mode() != m {
						t.Fatalf("mode %v, err %v; want %v", cfg.Mode(), err, m)
					}
				}
			})
		}
	}
}

func TestNewOptionErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		kind   error
		option string
	}{
		// Options are named as options.
		{"cert without key", []Option{WithClientCertFiles("/nonexistent.pem", "")}, ErrInvalidOption, "sslconn.WithClientCertFiles"},
		{"missing cert files", []Option{WithClientCertFiles("/nonexistent.pem", "/nonexistent.key")}, ErrInvalidOption, "sslconn.WithClientCertFiles"},
		{"missing CA file", []Option{WithCAFile("/nonexistent/ca.pem")}, ErrBadCA, "sslconn.WithCAFile"},
		{"bad CA bytes", []Option{WithCA([]byte("nope"))}, ErrBadCA, "sslconn.WithCA"},
		{"inverted versions", []Option{WithTLSVersions(tls.VersionTLS13, tls.VersionTLS12)}, ErrInvalidOption, "sslconn.WithTLSVersions"},
		{"bad mode", []Option{WithMode(Mode(42))}, ErrInvalidOption, "sslconn.WithMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig(tt.opts...)
			var e *Error
			if !errors.Is(err, tt.kind) || !errors.As(err, &e) || e.Option != tt.option {
				t.Fatalf("err = %v, want %v naming %s", err, tt.kind, tt.option)
			}
		})
	}
}

// TestModePrecedence: explicit mode, else the driver's, else CA implies
// VERIFY_CA, else PREFERRED.
func TestModePrecedence(t *testing.T) {
	ca := []byte(testCAPEM(t))
	tests := []struct {
		name string
		opts []Option
		want Mode
	}{
		{"nothing", nil, Preferred},
		{"CA alone", []Option{WithCA(ca)}, VerifyCA},
		{"driver's mode", []Option{withDefaultMode(VerifyIdentity), WithCA(ca)}, VerifyIdentity},
		{"driver's PREFERRED with a CA", []Option{withDefaultMode(Preferred), WithCA(ca)}, Preferred},
		{"explicit wins", []Option{WithMode(Required), withDefaultMode(VerifyIdentity), WithCA(ca)}, Required},
		{"later option wins", []Option{WithMode(Required), WithMode(Disabled)}, Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode() != tt.want {
				t.Fatalf("mode %v, want %v", c.Mode(), tt.want)
			}
		})
	}
}

// TestKeyPasswordParam: an encrypted client key's password as a DSN
// parameter, with libpq's name too.
func TestKeyPasswordParam(t *testing.T) {
	c := testenv.GetCerts(t)
	for _, name := range []string{"ssl-key-password", "sslpassword"} {
		q := url.Values{"ssl-cert": {c.Client.Cert}, "ssl-key": {c.ClientKeyPKCS8}, name: {testenv.KeyPassword}}
		if _, err := Resolve(Spec{Params: q}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestNativeTLS: a driver's *tls.Config is read, and the checks the library
// cannot honour are refused rather than dropped.
func TestNativeTLS(t *testing.T) {
	pool := x509.NewCertPool()
	tests := []struct {
		name string
		tc   *tls.Config
		want Mode
		err  string
	}{
		{"nil", nil, 0, ""},
		{"verified", &tls.Config{RootCAs: pool, ServerName: "db.internal"}, VerifyIdentity, ""},
		{"verification off", &tls.Config{InsecureSkipVerify: true}, Required, ""},
		{"own VerifyPeerCertificate", &tls.Config{VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}, 0, "VerifyPeerCertificate"},
		{"own VerifyConnection", &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return nil }}, 0, "VerifyConnection"},
		{"GetClientCertificate", &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return nil, nil }}, 0, "GetClientCertificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(Spec{TLS: tt.tc})
			if tt.err != "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != ErrInvalidOption || e.Option != "TLSConfig" || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != 0 && cfg.Mode() != tt.want {
				t.Fatalf("mode %v, want %v", cfg.Mode(), tt.want)
			}
		})
	}
}
