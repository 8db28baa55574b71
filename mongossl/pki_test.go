package mongossl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/sslconn/sslconn/internal/testenv"
)

var (
	pkiOnce  sync.Once
	pkiCerts *testenv.Certs
	pkiErr   error
)

// shortPKI makes, once per process and in milliseconds, the few files the
// tests that need no server use: a CA (Certs.CA), a client certificate from
// it (Certs.Client) and its key encrypted as PKCS#8 with testenv.KeyPassword
// (Certs.ClientKeyPKCS8). The other fields stay empty. The full set
// (testenv.GetCerts) runs gencerts.sh, keytool included, which takes seconds.
func shortPKI(t testing.TB) *testenv.Certs {
	t.Helper()
	pkiOnce.Do(func() { pkiCerts, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatalf("test PKI: %v", pkiErr)
	}
	return pkiCerts
}

func makePKI() (*testenv.Certs, error) {
	dir, err := testenv.TempDir("mongossl-pki")
	if err != nil {
		return nil, err
	}
	write := func(name, typ string, der []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mongossl-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sslconn-client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, client, caCert, &clientKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	plainKey, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return nil, err
	}
	encKey, err := pkcs8.MarshalPrivateKey(clientKey, []byte(testenv.KeyPassword), nil)
	if err != nil {
		return nil, err
	}
	c := &testenv.Certs{Dir: dir}
	for _, f := range []struct {
		dst       *string
		name, typ string
		der       []byte
	}{
		{&c.CA, "ca.crt", "CERTIFICATE", caDER},
		{&c.Client.Cert, "client.crt", "CERTIFICATE", clientDER},
		{&c.Client.Key, "client.key", "PRIVATE KEY", plainKey},
		{&c.ClientKeyPKCS8, "client-pkcs8.key", "ENCRYPTED PRIVATE KEY", encKey},
	} {
		if *f.dst, err = write(f.name, f.typ, f.der); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return c, nil
}
