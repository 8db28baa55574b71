package sslconn

import (
	"crypto"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// TestEncryptedClientKey: keys encrypted by openssl (PKCS#8 and the legacy
// PEM form) load with their password, and a missing or wrong password is
// an error that names the password's option and never holds the password.
func TestEncryptedClientKey(t *testing.T) {
	c := testenv.GetCerts(t)
	plain, err := New(WithClientCertFiles(c.Client.Cert, c.Client.Key))
	if err != nil {
		t.Fatal(err)
	}
	want := plain.s.ClientCert.PrivateKey
	for name, key := range map[string]string{"PKCS#8": c.ClientKeyPKCS8, "legacy PEM": c.ClientKeyLegacy} {
		t.Run(name, func(t *testing.T) {
			cfg, err := New(WithClientCertFiles(c.Client.Cert, key), WithClientKeyPassword(testenv.KeyPassword))
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := cfg.s.ClientCert.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(want) {
				t.Fatal("decrypted key differs from the plain one")
			}
			for _, pw := range []string{"", "Wrong-pw-" + testenv.KeyPassword} {
				_, err := New(WithClientCertFiles(c.Client.Cert, key), WithClientKeyPassword(pw))
				if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "sslconn.WithClientKeyPassword") {
					t.Fatalf("password %q: %v", pw, err)
				}
				if pw != "" && strings.Contains(err.Error(), pw) {
					t.Fatalf("password in %q", err)
				}
			}
		})
	}
}

// TestKeep: an option that sets Keep is given the Config's own settings,
// completed by New (how the engine reads a Config it makes), and not when
// New fails.
func TestKeep(t *testing.T) {
	var kept *settings
	keep := func(s *settings) { s.Keep = func(s *settings) { kept = s } }
	cfg, err := New(WithServerName("db.example"), keep)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case kept != cfg.s:
		t.Fatal("Keep was not given the Config's own settings")
	case kept.TLSConfig == nil || kept.VerifyChain == nil || kept.Delay == nil || kept.Logger == nil || kept.Clock.Now == nil:
		t.Fatal("settings not completed")
	case kept.NameFor("10.0.0.1:3306") != "db.example", kept.HandshakeTimeout != defaultHandshakeTimeout, kept.RetryBudgetSet:
		t.Fatalf("settings: name %q, handshake timeout %v, budget set %t", kept.NameFor("10.0.0.1:3306"), kept.HandshakeTimeout, kept.RetryBudgetSet)
	}
	kept = nil
	if _, err := New(WithTLSVersions(tls.VersionTLS13, tls.VersionTLS12), keep); err == nil || kept != nil {
		t.Fatalf("err %v, kept %v", err, kept)
	}
}
