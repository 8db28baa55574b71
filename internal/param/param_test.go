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
