// Package mongotest is the test environment of the mongo adapters that
// does not depend on the driver: the FerretDB scenarios, started lazily,
// servers of a test's own, and a small PKI for the tests without a server.
// mongossl's tests use it, and so mongov1's, which are generated from them.
package mongotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// Env is one FerretDB per scenario S0-S7 and the certificates.
type Env struct {
	Certs   *testenv.Certs
	Servers [8]*testenv.Server
}

// Scenarios starts on the first test that needs them, shared by the
// package's tests. FerretDB, like Redis, keeps plaintext and TLS on
// separate ports: DISABLED uses the plaintext port, or the TLS port where
// there is no other (S2, TLS forced); the modes that encrypt use the TLS
// port, or the plaintext port of S0.
var Scenarios = testenv.NewLazy(func() (*Env, error) {
	c, err := loadCerts()
	if err != nil {
		return nil, err
	}
	s, err := matrix.StartScenarios(c, testenv.StartFerretDB)
	if err != nil {
		return nil, fmt.Errorf("start FerretDB: %w", err)
	}
	return &Env{Certs: c, Servers: s}, nil
})

// CertServer is a server with its certificates.
type CertServer struct {
	Certs *testenv.Certs
	S     *testenv.Server
}

// MutualTLS is a FerretDB with TLS optional that requires client
// certificates from the CA.
var MutualTLS = testenv.NewLazy(func() (*CertServer, error) {
	c, err := loadCerts()
	if err != nil {
		return nil, err
	}
	conf := testenv.Scenario(c, 1)
	conf.ClientAuth = true
	s, err := testenv.StartFerretDB(conf)
	if err != nil {
		return nil, err
	}
	return &CertServer{Certs: c, S: s}, nil
})

// serverCerts are the certificates of the tests that start a server of
// their own (see StartOwn): a Lazy, so that its Get skips them under -short.
var serverCerts = testenv.NewLazy(loadCerts)

// Certs are the certificates of the servers a test starts itself; like a
// Lazy's Get it skips under -short.
func Certs(t testing.TB) *testenv.Certs { return serverCerts.Get(t) }

// StartOwn starts a FerretDB that only the calling test or benchmark uses,
// because it restarts or reconfigures it: a fresh one on every run, stopped
// when the test ends. Like a Lazy's Get it skips under -short.
func StartOwn(t testing.TB, conf func(*testenv.Certs) testenv.TLS) (*testenv.Certs, *testenv.Server) {
	t.Helper()
	c := serverCerts.Get(t)
	s, err := testenv.StartFerretDB(conf(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c, s
}

// loadCerts is testenv.GetCerts for a Lazy's start: an error, not a panic.
func loadCerts() (c *testenv.Certs, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return testenv.GetCerts(testenv.Must{}), nil
}

// URI is a mongodb:// URI for host:port with params.
func URI(host string, port int, params string) string {
	return fmt.Sprintf("mongodb://%s/?%s", net.JoinHostPort(host, strconv.Itoa(port)), params)
}

var (
	pkiOnce  sync.Once
	pkiCerts *testenv.Certs
	pkiErr   error
)

// ShortPKI makes, once per process and in milliseconds, the few files the
// tests that need no server use: a CA (Certs.CA), a client certificate from
// it (Certs.Client) and its key encrypted as PKCS#8 with testenv.KeyPassword
// (Certs.ClientKeyPKCS8). The other fields stay empty. The full set
// (testenv.GetCerts) runs gencerts.sh, keytool included, which takes seconds.
func ShortPKI(t testing.TB) *testenv.Certs {
	t.Helper()
	pkiOnce.Do(func() { pkiCerts, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatalf("test PKI: %v", pkiErr)
	}
	return pkiCerts
}

func makePKI() (*testenv.Certs, error) {
	dir, err := testenv.TempDir("mongotest-pki")
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
