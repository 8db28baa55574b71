package param

import (
	"errors"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

func TestCheckUnknown(t *testing.T) {
	tests := []struct {
		key, meant string // meant "": accepted
	}{
		{"ssl-mdoe", "ssl-mode"},
		{"sslmod", "ssl-mode"},
		{"ssl_certificate", "ssl-cert"},
		{"tls_versoin", "tls-version"},
		{"tlsVersion", ""}, // ours
		{"trustCertificateKeyStoreUrl", ""},
		{"trustCertificateKeyStoreURI", "ssl-ca"},
		{"charset", ""},
		{"parseTime", ""},
		{"sql_mode", ""},
		{"tlsmin", ""}, // the driver's, when it says so
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := CheckUnknown([]string{tt.key}, func(k string) bool { return k == "tlsmin" })
			if tt.meant == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var e *sslconn.Error
			if !errors.As(err, &e) || e.Kind != sslconn.ErrInvalidOption || e.Option != tt.key || !strings.Contains(err.Error(), tt.meant) {
				t.Fatalf("err = %v, want sslconn.ErrInvalidOption naming %s and %s", err, tt.key, tt.meant)
			}
		})
	}
}

func TestCheckLength(t *testing.T) {
	if err := CheckLength(strings.Repeat("a", maxDSN)); err != nil {
		t.Fatal(err)
	}
	err := CheckLength(strings.Repeat("a", maxDSN+1))
	var e *sslconn.Error
	if !errors.As(err, &e) || e.Kind != sslconn.ErrInvalidOption || e.Option != "dsn" {
		t.Fatalf("err = %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"sslmode", "sslmode", 0},
		{"sslmode", "sslmdoe", 1}, {"kitten", "sitting", 3}, {"sslca", "sslcert", 3},
		{"trustcertificatekeystoreur", "trustcertificatekeystoreurl", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestForeignNames (#29): the names users bring from libpq and the Java
// connectors lead to the parameter that does the job: an alias where the
// meaning is exact, else an ErrInvalidOption naming the right one.
func TestForeignNames(t *testing.T) {
	tests := []struct {
		key   string
		alias string // the parameter it is an alias of, or
		says  []string
	}{
		// libpq
		{key: "sslrootcert", alias: CA},
		{key: "sslcert", alias: Cert},
		{key: "sslkey", alias: Key},
		{key: "sslmode", alias: Mode},
		{key: "sslpassword", alias: KeyPassword},
		// MySQL Connector/J
		{key: "sslMode", alias: Mode},
		{key: "trustCertificateKeyStoreUrl", alias: CA},
		{key: "trustCertificateKeyStorePassword", alias: CAPassword},
		{key: "enabledTLSProtocols", alias: TLSVersion},
		{key: "tlsCiphersuites", alias: Cipher},
		{key: "useSSL", says: []string{"did you mean ssl-mode?", "ssl-mode=DISABLED"}},
		{key: "requireSSL", says: []string{"ssl-mode=REQUIRED"}},
		{key: "verifyServerCertificate", says: []string{"ssl-mode=VERIFY_CA"}},
		{key: "clientCertificateKeyStoreUrl", says: []string{"did you mean ssl-cert and ssl-key?"}},
		{key: "clientCertificateKeyStorePassword", says: []string{"ssl-key-password"}},
		{key: "trustCertificateKeyStoreType", says: []string{"ssl-ca", "JKS"}},
		// MariaDB Connector/J
		{key: "serverSslCert", says: []string{"did you mean ssl-ca?"}},
		{key: "trustStore", says: []string{"ssl-ca"}},
		{key: "trustStorePassword", says: []string{"ssl-ca-password"}},
		{key: "keyStore", says: []string{"ssl-cert and ssl-key"}},
		{key: "enabledSslProtocolSuites", says: []string{"tls-version"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := CheckUnknown([]string{tt.key}, nil)
			if tt.alias != "" {
				if canon, ok := Canonical(tt.key); !ok || canon != tt.alias || err != nil {
					t.Fatalf("Canonical = %q %v, CheckUnknown = %v; want an alias of %s", canon, ok, err, tt.alias)
				}
				return
			}
			var e *sslconn.Error
			if !errors.As(err, &e) || e.Kind != sslconn.ErrInvalidOption || e.Option != tt.key {
				t.Fatalf("err = %v, want sslconn.ErrInvalidOption naming %s", err, tt.key)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
	// sslrootcert is the CA, read as ssl-ca is; libpq's "system" is the
	// system roots.
	for _, v := range []string{"/etc/ca.pem", "system"} {
		opts, err := Options(map[string][]string{"sslrootcert": {v}})
		if err != nil || len(opts) != 1 {
			t.Fatalf("sslrootcert=%s: %v %v", v, opts, err)
		}
	}
}
