package check

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// readChain reads the certificates of a PEM file, leaf first.
func readChain(t *testing.T, file string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for b, rest := pem.Decode(data); b != nil; b, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return chain
}

// TestVerdictNamesTheCause (#17): the verdict says what is wrong with the
// certificate, which one (server or CA, by subject) and what fixes it,
// from the errors the modes return; the certificates are gencerts.sh's.
func TestVerdictNamesTheCause(t *testing.T) {
	c := testenv.GetCerts(t)
	const host = "localhost"
	ok := func(m sslconn.Mode) ModeResult {
		return Result(m, sslconn.Status{Encrypted: m != sslconn.Disabled, Version: "TLSv1.3"}, nil)
	}
	// verifyFails is a report in which the modes that verify fail as a
	// handshake against a server with this certificate would (or pass).
	verifyFails := func(t *testing.T, server, ca string) *Report {
		judge, err := core.Resolve(core.Spec{Params: url.Values{"ssl-ca": {ca}}})
		if err != nil {
			t.Fatal(err)
		}
		r := &Report{Address: host + ":3306"}
		for _, m := range core.Modes {
			if m < sslconn.VerifyCA {
				r.Modes = append(r.Modes, ok(m))
				continue
			}
			if err := judge.VerifyChain(m, host, readChain(t, server)); err != nil {
				r.Modes = append(r.Modes, Result(m, sslconn.Status{}, err))
			} else {
				r.Modes = append(r.Modes, ok(m))
			}
		}
		return r
	}
	tests := []struct {
		name string
		r    func(t *testing.T) *Report
		says []string
	}{
		{"key usage", func(t *testing.T) *Report { return verifyFails(t, c.ClientAuthOnly.Cert, c.CA) },
			[]string{"strongest mode that works: REQUIRED", "server certificate (CN=sslconn-clientauth-only) does not allow a TLS server: its extended key usage is clientAuth only", "reissue it with extendedKeyUsage serverAuth"}},
		{"expired CA", func(t *testing.T) *Report { return verifyFails(t, c.ExpiredCAServer.Cert, c.ExpiredCA) },
			[]string{"the CA certificate (CN=expired-root-ca) expired on 2021-01-01", "point ssl-ca at it"}},
		{"wrong CA", func(t *testing.T) *Report { return verifyFails(t, c.SAN.Cert, c.OtherCA) },
			[]string{"To reach VERIFY_IDENTITY: " + c.OtherCA + " holds CN=other-root-ca; the server's chain ends at CN=root-ca (issuer of CN=sslconn-test-server); point ssl-ca at the CA that holds CN=root-ca (the instance's CA chain)."}},
		{"expired server certificate", func(t *testing.T) *Report { return verifyFails(t, c.Expired.Cert, c.CA) },
			[]string{"the server certificate (CN=localhost) expired on 2021-01-01", "renew the server certificate"}},
		{"SHA-1", func(t *testing.T) *Report { return verifyFails(t, c.SHA1.Cert, c.CA) },
			[]string{"the certificate (CN=sslconn-sha1-signed) is signed with SHA-1", "reissue it signed with SHA-256"}},
		{"host name", func(t *testing.T) *Report { return verifyFails(t, c.OtherHost.Cert, c.CA) }, []string{"strongest mode that works: VERIFY_CA", `(CN=other.example.com) is for other.example.com, not "localhost"`, "ssl-server-name=other.example.com"}},
		{"negative serial", func(t *testing.T) *Report {
			// Go cannot parse the certificate: every mode that encrypts
			// fails alike, and the server may or may not take plaintext.
			r := &Report{Address: host + ":3306", Modes: []ModeResult{ok(sslconn.Disabled)}}
			for _, m := range core.Modes[1:] {
				err := core.Classify(errors.New("tls: failed to parse certificate from server: x509: negative serial number"), m, host)
				r.Modes = append(r.Modes, Result(m, sslconn.Status{}, err))
			}
			return r
		}, []string{"strongest mode that works: DISABLED", "the server offers TLS but no mode that encrypts connects", "negative serial number", "GODEBUG=x509negativeserial=1"}},
		{"negative serial, TLS forced", func(t *testing.T) *Report {
			r := &Report{Address: host + ":3306", Modes: []ModeResult{Result(sslconn.Disabled, sslconn.Status{},
				core.NewError(sslconn.ErrServerRequiresTLS, sslconn.Disabled, host, "", nil))}}
			for _, m := range core.Modes[1:] {
				err := core.Classify(errors.New("tls: failed to parse certificate from server: x509: negative serial number"), m, host)
				r.Modes = append(r.Modes, Result(m, sslconn.Status{}, err))
			}
			return r
		}, []string{"no mode connects: the server offers TLS but no mode that encrypts connects", "GODEBUG=x509negativeserial=1"}},
		{"legacy-only server", func(t *testing.T) *Report {
			r := &Report{Address: host + ":3306", TLSVersion: "TLSv1"}
			for _, m := range core.Modes {
				r.Modes = append(r.Modes, ok(m))
			}
			return r
		}, []string{"the server speaks only TLS versions below 1.2: tls-version=TLSv1 works", "VERIFY_IDENTITY works",
			"The requested mode VERIFY_IDENTITY works only with tls-version=TLSv1"}},
		{"TLS 1.2 with legacy suites only", func(t *testing.T) *Report {
			r := &Report{Address: host + ":3306", TLSVersion: "TLSv1,TLSv1.1,TLSv1.2", LegacyCipher: "TLS_RSA_WITH_AES_256_CBC_SHA"}
			for _, m := range core.Modes {
				r.Modes = append(r.Modes, ok(m))
			}
			return r
		}, []string{"the server's TLS 1.2 offers only legacy cipher suites (it chose TLS_RSA_WITH_AES_256_CBC_SHA): tls-version=TLSv1,TLSv1.1,TLSv1.2 works",
			"ssl-cipher=TLS_RSA_WITH_AES_256_CBC_SHA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r(t)
			r.verdict(sslconn.VerifyIdentity)
			for _, s := range tt.says {
				if !strings.Contains(r.Verdict, s) {
					t.Errorf("verdict %q does not say %q", r.Verdict, s)
				}
			}
			// The way to a stronger mode is never a weaker one.
			if strings.Contains(r.Verdict, "or use ssl-mode=") {
				t.Errorf("verdict %q advises a weaker mode", r.Verdict)
			}
		})
	}
}
