package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/check"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// legacyMaria is a TLS 1.0-only MariaDB offering only AES256-SHA (RSA key
// exchange), as older MySQL builds and ssl_cipher=ALL:@SECLEVEL=0
// instances can be; started on the first test that needs it, after that
// test has made the certificates.
var legacyMaria = testenv.NewLazy(func() (*testenv.Server, error) {
	return testenv.StartMariaDB(testenv.TLS{Cert: certs.SAN, CA: certs.CA, Versions: "TLSv1", Ciphers: "AES256-SHA"})
})

// TestCheckLegacyServer (#17): against a TLS 1.0-only server the default
// versions fail; check tries lower ones and says which tls-version
// works, and the table shows the modes with it. The exit status is about
// the DSN as given.
func TestCheckLegacyServer(t *testing.T) {
	certs = testenv.GetCerts(t)
	s := legacyMaria.Get(t)
	dsn := strings.Replace(mysqlDSN(s, "ssl-ca="+certs.CA), "127.0.0.1", "localhost", 1)
	code, out, _ := cli(t, nil, "check", "--mode", "VERIFY_IDENTITY", dsn)
	if code != 1 {
		t.Errorf("exit %d, want 1 (the DSN as given does not connect)", code)
	}
	for _, want := range []string{
		"the default TLS versions and cipher suites fail here; with tls-version=TLSv1:",
		"VERIFY_IDENTITY  connected, TLS         TLSv1    TLS_RSA_WITH_AES_256_CBC_SHA",
		"verdict: the server speaks only TLS versions below 1.2: tls-version=TLSv1 works",
		"VERIFY_IDENTITY works",
		"The requested mode VERIFY_IDENTITY works only with tls-version=TLSv1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)

	code, out, _ = cli(t, nil, "check", "--json", dsn+"&tls-version=TLSv1")
	var r check.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !r.OK || r.TLSVersion != "" || r.Strongest != "VERIFY_IDENTITY" || r.Modes[4].Version != "TLSv1" {
		t.Fatalf("with tls-version=TLSv1 in the DSN: exit %d %+v", code, r)
	}
}
