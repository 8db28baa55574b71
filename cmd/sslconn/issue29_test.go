package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/check"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestCheckRediss (#29): a rediss:// URL's DISABLED row asks the server in
// plaintext instead of reporting the conflict the command would make
// itself by adding ssl-mode=DISABLED to a URL that turns TLS on.
func TestCheckRediss(t *testing.T) {
	servers(t)
	dsn := fmt.Sprintf("rediss://:%s@localhost:%d/0", testenv.RedisPassword, redis1.TLSPort)
	code, out, errOut := cli(t, nil, "check", "--ca", certs.CA, "--json", dsn)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	var r check.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Modes {
		if m.Kind == "ErrInvalidOption" || m.NotApplicable != "" {
			t.Errorf("%s: %+v", m.Mode, m)
		}
	}
	if d := r.Modes[0]; d.Mode != "DISABLED" || d.Connected || d.Kind == "" {
		t.Errorf("DISABLED on the TLS port: %+v", d)
	}
	// On the plaintext port, redis:// in DISABLED connects.
	_, out, _ = cli(t, nil, "check", "--json", fmt.Sprintf("rediss://:%s@localhost:%d/0", testenv.RedisPassword, redis1.Port))
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if d := r.Modes[0]; !d.Connected || d.Encrypted {
		t.Errorf("DISABLED on the plaintext port: %+v", d)
	}
}

// TestCheckWrongCA (#29): a CA given that did not sign the server's chain
// is named, by file and subject, beside the CA the chain ends at; the
// verdict names that fix, not a weaker mode.
func TestCheckWrongCA(t *testing.T) {
	servers(t)
	for _, tt := range []struct {
		name, flag, param, knob string
	}{
		{"--ca", certs.OtherCA, "", "--ca"},
		{"ssl-ca", "", "ssl-ca=" + certs.OtherCA, "ssl-ca"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"check", "--mode", "VERIFY_IDENTITY"}
			if tt.flag != "" {
				args = append(args, "--ca", tt.flag)
			}
			code, out, _ := cli(t, nil, append(args, mysqlDSN(maria1, tt.param))...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			verdict := out[strings.Index(out, "verdict:"):]
			for _, want := range []string{
				certs.OtherCA + " holds CN=other-root-ca; the server's chain ends at CN=root-ca (issuer of CN=sslconn-test-server)",
				"point " + tt.knob + " at the CA that holds CN=root-ca",
			} {
				if !strings.Contains(verdict, want) {
					t.Errorf("verdict lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(verdict, "ssl-mode=REQUIRED") || strings.Contains(out, "set ssl-ca to the instance's CA chain") {
				t.Errorf("advice for a CA not set, or a weaker mode:\n%s", out)
			}
		})
	}
}

// TestCheckNamesFlags (#29): the command's errors name its flags for what
// they set, DSN parameters for what the DSN set, and nothing it has no
// flag for (the retry budget).
func TestCheckNamesFlags(t *testing.T) {
	certs = testenv.GetCerts(t)
	const pw = "Cli-Secret-29"
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:1)/%s", testenv.MySQLUser, testenv.MySQLPassword, testenv.MySQLDatabase)
	for _, tt := range []struct {
		name     string
		args     []string
		says     string
		not      string
		wantCode int
	}{
		{"--ca-password", []string{"check", "--ca", certs.JKS, "--ca-password", pw, dsn}, "set --ca-password to", "ssl-ca-password", 2},
		{"ssl-ca-password", []string{"check", dsn + "?ssl-ca=" + certs.JKS + "&ssl-ca-password=" + pw}, "set ssl-ca-password to", "--ca-password", 2},
		{"ca inspect --ca-password", []string{"ca", "inspect", "--ca-password", pw, certs.JKS}, "set --ca-password to", "ssl-ca-password", 2},
		{"closed port", []string{"check", "--timeout", "2s", dsn}, "ErrUnavailable", "WithRetryBudget", 1},
		{"closed port, Redis", []string{"check", "--timeout", "2s", "redis://localhost:1/0"}, "ErrUnavailable", "WithRetryBudget", 1},
		{"closed port, MongoDB", []string{"check", "--timeout", "2s", "mongodb://localhost:1/?serverSelectionTimeoutMS=2000"}, "", "WithRetryBudget", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.says) || strings.Contains(out+errOut, tt.not) {
				t.Fatalf("exit %d (want %d); want %q and no %q in\n%s%s", code, tt.wantCode, tt.says, tt.not, out, errOut)
			}
		})
	}
}

// TestCAFormatsAndPasswords (#29): ca inspect says which format it read;
// ca convert --to jks says the keystore's password (the default printed,
// one the user gave only named); a warning carries one prefix, and says
// what the library does with a server certificate given as the CA.
func TestCAFormatsAndPasswords(t *testing.T) {
	certs = testenv.GetCerts(t)
	for _, tt := range []struct{ file, format string }{
		{certs.CA, ": PEM, 1 certificate(s)"}, {certs.CADER, ": DER,"}, {certs.P7B, ": PEM (PKCS#7),"},
		{certs.P7BDER, ": PKCS#7,"}, {certs.JKS, ": JKS,"}, {certs.Zip, ": zip,"},
	} {
		t.Run("inspect/"+tt.format, func(t *testing.T) {
			code, out, errOut := cli(t, nil, "ca", "inspect", tt.file)
			if code != 0 || !strings.Contains(out, tt.file+tt.format) {
				t.Fatalf("exit %d; want %q in\n%s%s", code, tt.format, out, errOut)
			}
		})
	}
	dir := t.TempDir()
	t.Run("convert/jks default password", func(t *testing.T) {
		code, _, errOut := cli(t, nil, "ca", "convert", "--to", "jks", "--out", dir+"/a.jks", certs.CA)
		if code != 0 || !strings.Contains(errOut, "keystore password: "+sslconn.DefaultJKSPassword) {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		if _, err := sslconn.ReadCAChain(dir+"/a.jks", sslconn.DefaultJKSPassword); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("convert/jks given password", func(t *testing.T) {
		env := map[string]string{"SSLCONN_OUT_PASSWORD": "Out-Secret-29"}
		code, _, errOut := cli(t, env, "ca", "convert", "--to", "jks", "--out", dir+"/b.jks", certs.CA)
		if code != 0 || !strings.Contains(errOut, "keystore password: the one in SSLCONN_OUT_PASSWORD") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
	})
	t.Run("inspect a server certificate", func(t *testing.T) {
		code, _, errOut := cli(t, nil, "ca", "inspect", certs.SAN.Cert)
		if code != 1 || !strings.Contains(errOut, "sslconn: warning: invalid CA input") || strings.Count(errOut, "sslconn:") != 1 ||
			!strings.Contains(errOut, "is refused as the CA") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		// What the warning says is what the library does.
		if _, err := sslconn.ReadCAChain(certs.SAN.Cert, ""); !errors.Is(err, sslconn.ErrBadCA) {
			t.Fatalf("the library took a server certificate as the CA: %v", err)
		}
	})
}
