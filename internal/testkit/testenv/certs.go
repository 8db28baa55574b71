// Package testenv is the test harness: certificates made at test time by
// gencerts.sh (the openssl and keytool steps users follow), and private
// MariaDB, Redis and MongoDB-wire (FerretDB) servers on free loopback ports,
// in the scenarios of the SSL-mode contract. Test code only.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Pair is a certificate and its key, PEM files.
type Pair struct{ Cert, Key string }

// Certs are the files gencerts.sh makes.
type Certs struct {
	Dir       string
	CA        string // server-ca.crt, the guide's root CA (CN root-ca)
	CAKey     string
	CADER     string // the CA as DER
	ChainPEM  string // ApsaraDB-CA-Chain.pem, the CA under the console's name
	JKS       string // ApsaraDB-CA-Chain.jks, password apsaradb
	P7B       string // PEM-encoded PKCS#7
	P7BDER    string // DER-encoded PKCS#7
	Zip       string // ApsaraDB-CA-Chain.zip: .pem, .jks, .p7b
	OtherCA   string // a CA that signed nothing the servers use, but MITM
	SAN       Pair   // from the CA, SAN localhost, 127.0.0.1, ::1
	CNOnly    Pair   // from the CA, CN=localhost, no SAN (the guide's steps)
	OtherHost Pair   // from the CA, for other.example.com
	MITM      Pair   // from OtherCA, SAN localhost, 127.0.0.1, ::1
	Expired   Pair   // from the CA, expired in 2021
	Client    Pair   // client certificate from the CA, CN sslconn-client
	// Server certificates for the right names (SAN localhost, 127.0.0.1,
	// ::1) that Go refuses whatever the CA, one reason each.
	ClientAuthOnly Pair // from the CA, extended key usage clientAuth only (CN sslconn-clientauth-only)
	SHA1           Pair // from the CA, signed with SHA-1 (CN sslconn-sha1-signed); a server loads it with TLS.Weak only
	NegativeSerial Pair // from the CA, serial number -1234 (CN sslconn-negative-serial)
	// ExpiredCA (CN expired-root-ca) was valid in 2020 only; it issued
	// ExpiredCAServer (CN sslconn-expired-ca-server), valid now.
	ExpiredCA       string
	ExpiredCAServer Pair
	// The client key encrypted with KeyPassword: PKCS#8 and legacy PEM.
	ClientKeyPKCS8, ClientKeyLegacy string
}

// KeyPassword encrypts Certs.ClientKeyPKCS8 and ClientKeyLegacy.
const KeyPassword = "Key-Secret-pw1"

var (
	certsOnce sync.Once
	certs     *Certs
	certsErr  error
	tmpDirs   []string
	tmpMu     sync.Mutex
)

// Root returns the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// MakeCerts runs gencerts.sh into dir and returns the file names.
func MakeCerts(dir string) (*Certs, error) {
	script := filepath.Join(Root(), "internal", "testkit", "testenv", "gencerts.sh")
	cmd := exec.Command("bash", script, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gencerts.sh: %v\n%s", err, out)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	pair := func(n string) Pair { return Pair{p(n + ".crt"), p(n + ".key")} }
	return &Certs{
		Dir: dir, CA: p("server-ca.crt"), CAKey: p("server-ca.key"), CADER: p("server-ca.der"), ChainPEM: p("ApsaraDB-CA-Chain.pem"),
		JKS: p("ApsaraDB-CA-Chain.jks"), P7B: p("ApsaraDB-CA-Chain.p7b"), P7BDER: p("ApsaraDB-CA-Chain-der.p7b"),
		Zip: p("ApsaraDB-CA-Chain.zip"), OtherCA: p("other-ca.crt"),
		SAN: pair("san"), CNOnly: pair("cn"), OtherHost: pair("otherhost"), MITM: pair("mitm"),
		Expired: pair("expired"), Client: pair("client"),
		ClientAuthOnly: pair("clientauth"), SHA1: pair("sha1"), NegativeSerial: pair("negserial"),
		ExpiredCA: p("expired-ca.crt"), ExpiredCAServer: pair("expiredca-server"),
		ClientKeyPKCS8: p("client-pkcs8.key"), ClientKeyLegacy: p("client-legacy.key"),
	}, nil
}

// TB is the part of testing.TB the harness needs; TestMain has no T, so the
// harness also accepts a plain panicking reporter (see Must).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// certTools are what gencerts.sh runs: the tools a user follows the guides with.
var certTools = []string{"bash", "openssl", "keytool", "zip"}

// GetCerts makes the certificates once per test process. On a machine
// without the tools (a Windows laptop, say) a test skips, under -short
// only: scripts/test.sh installs them, and there a missing tool is a failure.
func GetCerts(t TB) *Certs {
	t.Helper()
	if Short() {
		for _, tool := range certTools {
			if _, err := exec.LookPath(tool); err != nil {
				if s, ok := t.(interface{ Skipf(string, ...any) }); ok {
					s.Skipf("needs %s to make the test certificates as the guides do; scripts/test.sh installs it", tool)
				}
			}
		}
	}
	certsOnce.Do(func() {
		dir, err := TempDir("certs")
		if err != nil {
			certsErr = err
			return
		}
		certs, certsErr = MakeCerts(dir)
	})
	if certsErr != nil {
		t.Fatalf("testenv: %v", certsErr)
	}
	return certs
}

// TempDir makes a directory that Cleanup removes.
func TempDir(name string) (string, error) {
	d, err := os.MkdirTemp("", "sslconn-"+name+"-")
	if err != nil {
		return "", err
	}
	tmpMu.Lock()
	tmpDirs = append(tmpDirs, d)
	tmpMu.Unlock()
	return d, nil
}

// Cleanup stops every server the harness started, including those a
// Lazy started on a test's first Get (and closes the Lazy values that have
// a Close or Stop method), and removes their files. TestMain calls it after
// m.Run. Every stop is bounded (see KillTimeout); a server that would not
// stop is reported on standard error and in the error returned, which
// TestMain turns into a failing exit code.
func Cleanup() error {
	err := cleanupLazies()
	err = errors.Join(err, stopAll())
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: cleanup: %v\n", err)
	}
	tmpMu.Lock()
	defer tmpMu.Unlock()
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
	tmpDirs = nil
	return err
}

// ErrorfTB is the part of testing.TB that Stop reports through.
type ErrorfTB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Stop calls stop (a server's Stop, a forwarder's Close) and fails the
// test with t.Errorf when it returns an error: a server that would not stop
// is a failure, not a line on standard error. For defer:
//
//	defer testenv.Stop(t, "the TDS server", s.Stop)
func Stop(t ErrorfTB, what string, stop func() error) {
	t.Helper()
	if err := stop(); err != nil {
		t.Errorf("stopping %s: %v", what, err)
	}
}

// Must is a TB for TestMain: it panics on failure.
type Must struct{}

func (Must) Helper() {}

func (Must) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
