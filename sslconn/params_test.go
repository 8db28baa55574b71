package sslconn

import (
	"crypto/tls"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestTakeParams(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		wantMode Mode
		check    func(*testing.T, *settings)
		left     string
	}{
		{name: "canonical", query: "ssl-mode=VERIFY_CA&ssl-ca=/ca.pem&charset=utf8", wantMode: VerifyCA, left: "charset=utf8",
			check: func(t *testing.T, s *settings) {
				if s.caFile != "/ca.pem" {
					t.Errorf("caFile %q", s.caFile)
				}
			}},
		{name: "underscores", query: "ssl_mode=required&ssl_server_name=db.example.com", wantMode: Required,
			check: func(t *testing.T, s *settings) {
				if s.serverName != "db.example.com" {
					t.Errorf("serverName %q", s.serverName)
				}
			}},
		{name: "Connector/J", query: "sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:/certs/ApsaraDB-CA-Chain.jks&trustCertificateKeyStorePassword=apsaradb&enabledTLSProtocols=TLSv1.2,TLSv1.3", wantMode: VerifyIdentity,
			check: func(t *testing.T, s *settings) {
				if s.caFile != "/certs/ApsaraDB-CA-Chain.jks" || s.caPassword != "apsaradb" {
					t.Errorf("ca %q", s.caFile)
				}
				if s.minVersion != tls.VersionTLS12 || s.maxVersion != tls.VersionTLS13 {
					t.Errorf("versions %x-%x", s.minVersion, s.maxVersion)
				}
			}},
		{name: "libpq mode", query: "sslmode=verify-full", wantMode: VerifyIdentity},
		{name: "legacy TLS and ciphers", query: "tls-version=TLSv1,TLSv1.1&ssl-cipher=AES128-SHA:ECDHE-RSA-AES128-SHA",
			check: func(t *testing.T, s *settings) {
				if s.minVersion != tls.VersionTLS10 || s.maxVersion != tls.VersionTLS11 {
					t.Errorf("versions %x-%x", s.minVersion, s.maxVersion)
				}
				if len(s.cipherSuites) != 2 || s.cipherSuites[0] != tls.TLS_RSA_WITH_AES_128_CBC_SHA {
					t.Errorf("ciphers %v", s.cipherSuites)
				}
			}},
		{name: "client cert", query: "ssl-cert=/c.pem&ssl-key=/k.pem",
			check: func(t *testing.T, s *settings) {
				if s.certFile != "/c.pem" || s.keyFile != "/k.pem" {
					t.Errorf("cert %q key %q", s.certFile, s.keyFile)
				}
			}},
		{name: "none", query: "tls=true&parseTime=true", left: "parseTime=true&tls=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			p, err := TakeParams(q)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tt.wantMode {
				t.Errorf("mode %v, want %v", p.Mode, tt.wantMode)
			}
			var s settings
			for _, o := range p.Options {
				o(&s)
			}
			if tt.check != nil {
				tt.check(t, &s)
			}
			if tt.left != "" && q.Encode() != tt.left {
				t.Errorf("left %q, want %q", q.Encode(), tt.left)
			}
		})
	}
}

func TestTakeParamsErrors(t *testing.T) {
	tests := []struct{ query, option, says string }{
		{"ssl-mode=on", "ssl-mode", "VERIFY_IDENTITY"},
		{"ssl-mode=", "ssl-mode", "empty"},
		{"tls-version=TLSv1.4", "tls-version", "TLSv1.4"},
		{"ssl-cipher=NOT-A-CIPHER", "ssl-cipher", "NOT-A-CIPHER"},
		{"ssl-ca=", "ssl-ca", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			_, err := TakeParams(q)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tt.option) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestNewOptionErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		kind   error
		option string
	}{
		{"cert without key", []Option{WithClientCertFiles("/nonexistent.pem", "")}, ErrInvalidOption, "ssl-cert"},
		{"missing cert files", []Option{WithClientCertFiles("/nonexistent.pem", "/nonexistent.key")}, ErrInvalidOption, "ssl-cert"},
		{"missing CA file", []Option{WithCAFile("/nonexistent/ca.pem")}, ErrBadCA, "ssl-ca"},
		{"bad CA bytes", []Option{WithCA([]byte("nope"))}, ErrBadCA, "ssl-ca"},
		{"inverted versions", []Option{WithTLSVersions(tls.VersionTLS13, tls.VersionTLS12)}, ErrInvalidOption, "tls-version"},
		{"bad mode", []Option{WithMode(Mode(42))}, ErrInvalidOption, "ssl-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts...)
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
		{"driver's mode", []Option{WithDefaultMode(VerifyIdentity), WithCA(ca)}, VerifyIdentity},
		{"explicit wins", []Option{WithMode(Required), WithDefaultMode(VerifyIdentity), WithCA(ca)}, Required},
		{"later option wins", []Option{WithMode(Required), WithMode(Disabled)}, Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode() != tt.want {
				t.Fatalf("mode %v, want %v", c.Mode(), tt.want)
			}
		})
	}
}
