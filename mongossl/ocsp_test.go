package mongossl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/ocsp"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// ocspPKI is a CA, a server certificate from it for localhost, the same
// with the Must-Staple extension, and a key that is not the CA's.
type ocspPKI struct {
	ca, leaf, mustStaple *x509.Certificate
	caKey, leafKey       crypto.Signer
	otherCA              *x509.Certificate
	otherKey             crypto.Signer
	pool                 *x509.CertPool
	caFile               string
}

var (
	ocspOnce sync.Once
	ocspVal  *ocspPKI
	ocspErr  error
)

func getOCSPPKI(t *testing.T) *ocspPKI {
	t.Helper()
	ocspOnce.Do(func() { ocspVal, ocspErr = makeOCSPPKI() })
	if ocspErr != nil {
		t.Fatal(ocspErr)
	}
	return ocspVal
}

func makeOCSPPKI() (*ocspPKI, error) {
	dir, err := testenv.TempDir("mongossl-ocsp")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	mk := func(tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) (*x509.Certificate, error) {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
	}
	p := &ocspPKI{caKey: newKey(), leafKey: newKey(), otherKey: newKey()}
	if p.ca, err = mk(caTmpl("ocsp-test-ca"), caTmpl("ocsp-test-ca"), p.caKey.Public(), p.caKey); err != nil {
		return nil, err
	}
	if p.otherCA, err = mk(caTmpl("ocsp-test-ca"), caTmpl("ocsp-test-ca"), p.otherKey.Public(), p.otherKey); err != nil {
		return nil, err
	}
	leaf := func(serial int64, extra []pkix.Extension) (*x509.Certificate, error) {
		return mk(&x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ocsp-test-server"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			ExtraExtensions: extra,
		}, p.ca, p.leafKey.Public(), p.caKey)
	}
	if p.leaf, err = leaf(1001, nil); err != nil {
		return nil, err
	}
	feature, err := asn1.Marshal([]int{5}) // status_request
	if err != nil {
		return nil, err
	}
	if p.mustStaple, err = leaf(1002, []pkix.Extension{{Id: tlsFeatureOID, Value: feature}}); err != nil {
		return nil, err
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.caFile = filepath.Join(dir, "ocsp-ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw}), 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

// response is an OCSP response for cert, signed as the CA (or by signer
// with issuer's name, for a forgery).
func (p *ocspPKI) response(t *testing.T, cert *x509.Certificate, status int, mut func(*ocsp.Response)) []byte {
	t.Helper()
	now := time.Now()
	tmpl := ocsp.Response{
		Status: status, SerialNumber: cert.SerialNumber,
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-2*time.Hour), ocsp.KeyCompromise
	}
	issuer, signer := p.ca, crypto.Signer(p.caKey)
	if mut != nil {
		mut(&tmpl)
	}
	if tmpl.Certificate == p.otherCA { // forged: signed by a key that is not the issuer's
		issuer, signer, tmpl.Certificate = p.otherCA, p.otherKey, nil
	}
	der, err := ocsp.CreateResponse(issuer, issuer, tmpl, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// stapling starts a TLS server on 127.0.0.1 that presents chain (leaf
// first) and staples staple, and returns its address.
func (p *ocspPKI) stapling(t *testing.T, chain []*x509.Certificate, staple []byte) string {
	t.Helper()
	cert := tls.Certificate{PrivateKey: p.leafKey, OCSPStaple: staple}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(io.Discard, c) // handshakes, then waits for the client to close
			}()
		}
	}()
	return ln.Addr().String()
}

// TestStapledOCSP: the dialer checks the server's stapled OCSP response in
// VERIFY_CA and VERIFY_IDENTITY, as mongo-driver does for its own TLS: a
// revoked certificate is refused, typed (ErrUnknownAuthority, the text
// saying "revoked"); a good one passes. No database server: an in-process
// TLS listener staples responses made with golang.org/x/crypto/ocsp.
func TestStapledOCSP(t *testing.T) {
	p := getOCSPPKI(t)
	verified := &tls.Config{RootCAs: p.pool, ServerName: "localhost"}
	chain := []*x509.Certificate{p.leaf, p.ca}
	revoked := p.response(t, p.leaf, ocsp.Revoked, nil)
	good := p.response(t, p.leaf, ocsp.Good, nil)
	tests := []struct {
		name   string
		chain  []*x509.Certificate
		staple []byte
		tc     *tls.Config
		set    func(*options.ClientOptions)
		opts   []sslconn.Option
		says   string // refused, saying this; "": accepted
	}{
		{name: "revoked", chain: chain, staple: revoked, tc: verified, says: "is revoked"},
		{name: "good", chain: chain, staple: good, tc: verified},
		{name: "unknown status passes", chain: chain, staple: p.response(t, p.leaf, ocsp.Unknown, nil), tc: verified},
		{name: "no staple", chain: chain, tc: verified},
		{name: "revoked, server sends its certificate alone", chain: chain[:1], staple: revoked, tc: verified, says: "is revoked"},
		{name: "good, server sends its certificate alone", chain: chain[:1], staple: good, tc: verified},
		{name: "revoked in VERIFY_CA", chain: chain, staple: revoked, tc: &tls.Config{RootCAs: p.pool}, opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA), sslconn.WithServerName("elsewhere.example")}, says: "is revoked"},
		{name: "revoked in REQUIRED: nothing is verified", chain: chain, staple: revoked, tc: &tls.Config{InsecureSkipVerify: true}},
		//v1:omit v1's options have no SetDisableCertificateRevocationCheck
		{name: "revoked, tlsDisableCertificateRevocationCheck", chain: chain, staple: revoked, tc: verified,
			set: func(co *options.ClientOptions) { co.SetDisableCertificateRevocationCheck(true) }},
		//v1:end
		{name: "revoked, tlsDisableOCSPEndpointCheck still checks staples", chain: chain, staple: revoked, tc: verified,
			set: func(co *options.ClientOptions) { co.SetDisableOCSPEndpointCheck(true) }, says: "is revoked"},
		{name: "staple for another certificate", chain: chain, staple: p.response(t, p.mustStaple, ocsp.Good, nil), tc: verified, says: "invalid"},
		{name: "staple not signed by the issuer", chain: chain, tc: verified, says: "invalid",
			staple: p.response(t, p.leaf, ocsp.Good, func(r *ocsp.Response) { r.Certificate = p.otherCA })},
		{name: "staple out of date", chain: chain, tc: verified, says: "nextUpdate",
			staple: p.response(t, p.leaf, ocsp.Good, func(r *ocsp.Response) {
				r.ThisUpdate, r.NextUpdate = time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour)
			})},
		{name: "Must-Staple without a staple", chain: []*x509.Certificate{p.mustStaple, p.ca}, tc: verified, says: "Must-Staple"},
		{name: "Must-Staple with a good staple", chain: []*x509.Certificate{p.mustStaple, p.ca}, tc: verified,
			staple: p.response(t, p.mustStaple, ocsp.Good, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := p.stapling(t, tt.chain, tt.staple)
			co := options.Client().SetHosts([]string{addr}).SetTLSConfig(tt.tc.Clone())
			if tt.set != nil {
				tt.set(co)
			}
			_, d, err := fromOptions(co, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, tt.opts...))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", addr)
			if tt.says == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("accepted, want refused saying %q", tt.says)
			}
			checkRevoked(t, err, tt.says)
		})
	}
}

func checkRevoked(t *testing.T, err error, says string) {
	t.Helper()
	var se *sslconn.Error
	if !errors.Is(err, sslconn.ErrUnknownAuthority) || !errors.As(err, &se) || se.Option != "tlsDisableCertificateRevocationCheck" {
		t.Fatalf("%v, want ErrUnknownAuthority naming tlsDisableCertificateRevocationCheck", err)
	}
	if !strings.Contains(err.Error(), says) || se.Host == "" || se.Mode < sslconn.VerifyCA {
		t.Fatalf("%v does not say %q, or lacks the host or mode", err, says)
	}
}

// TestStapledOCSPConnect: a revoked certificate fails Connect and
// ConnectOptions at once, typed; the URI's tlsDisableCertificateRevocationCheck
// turns the check off and tlsDisableOCSPEndpointCheck does not.
func TestStapledOCSPConnect(t *testing.T) {
	p := getOCSPPKI(t)
	addr := p.stapling(t, []*x509.Certificate{p.leaf, p.ca}, p.response(t, p.leaf, ocsp.Revoked, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	co := options.Client().SetHosts([]string{addr}).SetTLSConfig(&tls.Config{RootCAs: p.pool, ServerName: "localhost"})
	if c, err := ConnectOptions(ctx, co); err == nil {
		_ = c.Disconnect(ctx)
		t.Fatal("ConnectOptions accepted a revoked certificate")
	} else {
		checkRevoked(t, err, "is revoked")
	}
	base := "mongodb://" + addr + "/?ssl-mode=VERIFY_IDENTITY&ssl-server-name=localhost&ssl-ca=" + p.caFile
	if c, err := Connect(ctx, base+"&tlsDisableOCSPEndpointCheck=true"); err == nil {
		_ = c.Disconnect(ctx)
		t.Fatal("Connect accepted a revoked certificate")
	} else {
		checkRevoked(t, err, "is revoked")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	co, err := ClientOptions(base + "&tlsDisableCertificateRevocationCheck=true")
	if err != nil {
		t.Fatal(err)
	}
	c, err := co.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("tlsDisableCertificateRevocationCheck=true: %v", err)
	}
	c.Close()
}
