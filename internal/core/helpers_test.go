package core

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"
)

func init() {
	// Keep test output readable; tests that check logging use their own logger.
	slog.SetDefault(slog.New(slog.DiscardHandler))
}

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// makeCert issues a certificate from parent (self-signed when nil). dns
// nil means no SAN extension at all.
func makeCert(t testing.TB, cn string, dns []string, isCA bool, notAfter time.Time, parent *testCert) *testCert {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: cn},
		NotAfter: notAfter,
		DNSNames: dns,
		IsCA:     isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}, parent)
}

// issue makes a certificate from tmpl, signed by parent (self-signed when
// nil).
func issue(t testing.TB, tmpl *x509.Certificate, parent *testCert) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.BasicConstraintsValid = true
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{c, key}
}

func (c *testCert) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
}

// tlsCert returns the chain leaf..intermediates for a server.
func (c *testCert) tlsCert(chain ...*testCert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
	for _, ic := range chain {
		tc.Certificate = append(tc.Certificate, ic.cert.Raw)
	}
	return tc
}

func testCAPEM(t testing.TB) string {
	return makeCert(t, "test-ca", nil, true, time.Now().Add(365*24*time.Hour), nil).pem()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
