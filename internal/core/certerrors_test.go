package core

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// TestCertDiagnosis: verification failures that no CA setting fixes fail
// at once, name the certificate at fault by subject and say what does fix
// them; a host-name mismatch lists the names the certificate holds.
func TestCertDiagnosis(t *testing.T) {
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Root CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	oldCA := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Old Root CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, nil)
	leaf := func(parent *testCert, cn string, dns []string, eku ...x509.ExtKeyUsage) []*x509.Certificate {
		return []*x509.Certificate{issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns, ExtKeyUsage: eku}, parent).cert}
	}
	cfg := func(cas ...*testCert) *Config {
		var pem []byte
		for _, c := range cas {
			pem = append(pem, c.pem()...)
		}
		c, err := newConfig(sslconn.WithCA(pem))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		cfg   *Config
		mode  Mode
		host  string
		chain []*x509.Certificate
		want  error
		text  []string
	}{
		{"clientAuth only", cfg(ca), VerifyCA, "db", leaf(ca, "db", []string{"db"}, x509.ExtKeyUsageClientAuth),
			sslconn.ErrBadCertificate, []string{"CN=db", "clientAuth only", "serverAuth"}},
		{"CA expired", cfg(oldCA), VerifyCA, "db", leaf(oldCA, "db", []string{"db"}),
			ErrCertExpired, []string{"CA certificate (CN=Old Root CA) expired on", "point sslconn.WithCA at it"}},
		{"names held", cfg(ca), VerifyIdentity, "10.0.0.7:3306", leaf(ca, "rm-1", []string{"rm-1.mysql.example.com", "*.example.net"}),
			ErrHostnameMismatch, []string{"rm-1.mysql.example.com, *.example.net", `not "10.0.0.7"`, "ssl-server-name=rm-1.mysql.example.com"}},
		{"CN only", cfg(ca), VerifyIdentity, "db2", leaf(ca, "db1", nil),
			ErrHostnameMismatch, []string{"is for db1", "ssl-server-name=db1"}},
		{"unknown issuer", cfg(ca), VerifyCA, "db", leaf(issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil), "db", []string{"db"}),
			// A wrong CA is named by what it holds, beside where the chain ends.
			ErrUnknownAuthority, []string{"the CA given (sslconn.WithCA) holds CN=Test Root CA; the server's chain ends at CN=Other CA (issuer of CN=db)", "point sslconn.WithCA at the CA that holds CN=Other CA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.VerifyChain(tt.mode, tt.host, tt.chain)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !IsPermanent(err) {
				t.Errorf("retried: %v", err)
			}
			for _, s := range tt.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
		})
	}
}

// TestNotACA: a CA input holding only a server's certificate is refused,
// naming it and its issuer; one holding a CA or a self-signed certificate
// is not.
func TestNotACA(t *testing.T) {
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Root CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	server := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "db.example.com"}}, ca)
	selfSigned := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "self"}}, nil)
	if _, err := sslconn.ParseCAChain([]byte(server.pem()), ""); !errors.Is(err, sslconn.ErrBadCA) ||
		!strings.Contains(err.Error(), "CN=db.example.com") || !strings.Contains(err.Error(), `issued by "CN=Test Root CA"`) {
		t.Fatalf("server certificate as CA: %v", err)
	}
	for name, pem := range map[string]string{"CA": ca.pem(), "self-signed": selfSigned.pem(), "server and CA": server.pem() + ca.pem()} {
		if _, err := sslconn.ParseCAChain([]byte(pem), ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLegacySuites: a minimum below TLS 1.2 offers the RSA key exchange
// and 3DES suites Go leaves out of its defaults; TLS 1.2 and up, or an
// explicit ssl-cipher, do not.
func TestLegacySuites(t *testing.T) {
	suites := func(opts ...sslconn.Option) []uint16 {
		c, err := newConfig(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c.s.TLSConfig(Required, "db").CipherSuites
	}
	has := func(ids []uint16, id uint16) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
	legacy := suites(sslconn.WithTLSVersions(tls.VersionTLS10, 0))
	for _, id := range []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256} {
		if !has(legacy, id) {
			t.Errorf("TLSv1 minimum lacks %s", tls.CipherSuiteName(id))
		}
	}
	if has(legacy, tls.TLS_RSA_WITH_RC4_128_SHA) {
		t.Error("RC4 offered")
	}
	if s := suites(); s != nil {
		t.Errorf("default suites changed: %v", s)
	}
	if s := suites(sslconn.WithTLSVersions(tls.VersionTLS10, 0), sslconn.WithCipherSuites(tls.TLS_RSA_WITH_AES_256_CBC_SHA)); len(s) != 1 {
		t.Errorf("ssl-cipher not kept alone: %v", s)
	}
}

// TestSystemRoots: ssl-ca-system=include trusts the CA file and the system
// roots; any other value is an error naming the parameter.
func TestSystemRoots(t *testing.T) {
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Root CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	chain := []*x509.Certificate{issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "db"}, DNSNames: []string{"db"}}, ca).cert}
	for _, v := range []string{"include", "exclude"} {
		c, err := Resolve(Spec{Params: map[string][]string{"ssl-ca-system": {v}}}, sslconn.WithCA([]byte(ca.pem())))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.VerifyChain(VerifyIdentity, "db", chain); err != nil {
			t.Errorf("%s: the CA's certificate: %v", v, err)
		}
	}
	if _, err := Resolve(Spec{Params: map[string][]string{"sslCaSystem": {"both"}}}); !errors.Is(err, sslconn.ErrInvalidOption) || !strings.Contains(err.Error(), "ssl-ca-system") {
		t.Errorf("bad value: %v", err)
	}
}

// TestVersionAdvice: a server below the client's minimum is ErrTLSVersion
// naming the tls-version to set: the one the server chose when it says
// (servers without TLS 1.3's supported_versions), else the legacy list.
func TestVersionAdvice(t *testing.T) {
	tests := []struct {
		err  error
		says []string
	}{
		{errors.New("tls: server selected unsupported protocol version 301"), []string{"the server chose TLSv1,", "set tls-version=TLSv1 ("}},
		{errors.New("tls: server selected unsupported protocol version 302"), []string{"the server chose TLSv1.1,", "set tls-version=TLSv1.1 ("}},
		{tls.AlertError(70), []string{"tls-version=TLSv1,TLSv1.1,TLSv1.2", "legacy cipher suites", "ssl-cipher"}},
	}
	for _, tt := range tests {
		err := Classify(tt.err, sslconn.VerifyIdentity, "db:3306")
		if !errors.Is(err, sslconn.ErrTLSVersion) || !IsPermanent(err) {
			t.Fatalf("%v: %v", tt.err, err)
		}
		for _, s := range tt.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q does not say %q", err, s)
			}
		}
	}
}

// TestRedactShortSecret: a short password is masked where it stands as a
// word (as in a DSN), not inside other words of the message.
func TestRedactShortSecret(t *testing.T) {
	for _, tt := range []struct{ secret, in, want string }{
		{"p", "dial tcp 127.0.0.1:3306: app:p@tcp", "dial tcp 127.0.0.1:3306: app:xxxxx@tcp"},
		{"pw1", "mongodb://app:pw1@db/?x=pw1", "mongodb://app:xxxxx@db/?x=xxxxx"},
		{"pw1", "spw1 pw12 pw1", "spw1 pw12 xxxxx"},
		{"a-long-secret", "xa-long-secretx", "xxxxxxx"},
	} {
		if got := redactText(tt.in, []string{tt.secret}); got != tt.want {
			t.Errorf("redact(%q, %q) = %q; want %q", tt.in, tt.secret, got, tt.want)
		}
	}
}
