package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sslconn/sslconn/internal/check"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// The endpoints the command is checked against, started once: each engine
// with TLS optional (S1), a CN-only certificate (MariaDB S5), an expired
// one (Redis S6) and a server without TLS (Redis S0).
var (
	certs                          *testenv.Certs
	maria1, maria5, redis0, redis6 *testenv.Server
	redis1, ferret1                *testenv.Server
	tds1                           *tdsserver.Server
	secrets                        = []string{testenv.MySQLPassword, testenv.RedisPassword, "Tds-Secret-pw1"}
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	check.SilenceDrivers()
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

// endpoints starts the servers on the first test that needs them (not with -short).
var endpoints = testenv.NewLazy(func() (*tdsserver.Server, error) {
	starts := []struct {
		dst   **testenv.Server
		start func(testenv.TLS) (*testenv.Server, error)
		sc    int
	}{
		{&maria1, testenv.StartMariaDB, 1}, {&maria5, testenv.StartMariaDB, 5},
		{&redis0, testenv.StartRedis, 0}, {&redis6, testenv.StartRedis, 6}, {&redis1, testenv.StartRedis, 1},
		{&ferret1, testenv.StartFerretDB, 1},
	}
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, s := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*s.dst, errs[i] = s.start(testenv.Scenario(certs, s.sc))
		}()
	}
	wg.Wait()
	conf, err := tdsserver.ForScenario(testenv.Scenario(certs, 1), "sa", "Tds-Secret-pw1")
	if err == nil {
		tds1, err = tdsserver.Start(conf)
	}
	return tds1, errors.Join(append(errs, err)...)
})

// servers makes the certificates and, unless -short, starts the endpoints.
func servers(t *testing.T) {
	t.Helper()
	certs = testenv.GetCerts(t)
	endpoints.Get(t)
}

// cli runs the command and checks that no password reached its output.
func cli(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	for _, s := range append(secrets, env["SSLCONN_CA_PASSWORD"], env["SSLCONN_OUT_PASSWORD"]) {
		if s != "" && s != "apsaradb" && strings.Contains(out.String()+errOut.String(), s) {
			t.Errorf("password %q... in the output", s[:3])
		}
	}
	return code, out.String(), errOut.String()
}

func mysqlDSN(s *testenv.Server, params string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", testenv.MySQLUser, testenv.MySQLPassword, testenv.Addr(s.Port), testenv.MySQLDatabase, params)
}

func redisURL(port int) string {
	return fmt.Sprintf("redis://:%s@localhost:%d/0", testenv.RedisPassword, port)
}

// TestCheckEngines: each engine, told apart by its DSN syntax, connects in
// every mode against a server with TLS optional and a SAN certificate.
func TestCheckEngines(t *testing.T) {
	servers(t)
	tests := []struct {
		engine check.Engine
		dsn    string
	}{
		{check.MySQL, mysqlDSN(maria1, "ssl-mode=VERIFY_IDENTITY")},
		{check.Redis, fmt.Sprintf("rediss://:%s@localhost:%d/0", testenv.RedisPassword, redis1.TLSPort)},
		{check.Mongo, fmt.Sprintf("mongodb://localhost:%d/", ferret1.TLSPort)},
		{check.MSSQL, fmt.Sprintf("sqlserver://sa:Tds-Secret-pw1@%s?database=master", tds1.Addr())},
		{check.MSSQL, fmt.Sprintf("server=%s;user id=sa;password=Tds-Secret-pw1", strings.Replace(tds1.Addr(), ":", ",", 1))},
	}
	for _, tt := range tests {
		t.Run(string(tt.engine), func(t *testing.T) {
			code, out, errOut := cli(t, nil, "check", "--ca", certs.JKS, "--json", tt.dsn)
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			var r check.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.Engine != tt.engine || !r.OK || r.Strongest != "VERIFY_IDENTITY" || r.Chain == nil || !r.Chain.CAVerifies || !r.Chain.HostOK {
				t.Fatalf("%+v", r)
			}
			// Redis and FerretDB's TLS port refuses plaintext.
			wantPlain := tt.engine == check.MySQL || tt.engine == check.MSSQL
			if d := r.Modes[0]; d.Connected != wantPlain || d.Encrypted {
				t.Errorf("DISABLED: %+v", d)
			}
			for _, m := range r.Modes[1:] {
				if !m.Connected || !m.Encrypted || !strings.HasPrefix(m.Version, "TLSv1.") || m.Cipher == "" {
					t.Errorf("%s: %+v", m.Mode, m)
				}
			}
		})
	}
}

// TestCheckText: the table, the chain and the verdict as people read them.
func TestCheckText(t *testing.T) {
	servers(t)
	code, out, _ := cli(t, nil, "check", mysqlDSN(maria1, "ssl-ca="+certs.CA))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"mysql at " + testenv.Addr(maria1.Port) + " (requested mode VERIFY_CA)",
		"DISABLED         connected, plaintext",
		"VERIFY_IDENTITY  connected, TLS         TLSv1.3  TLS_",
		"[0] CN=sslconn-test-server", "issuer     CN=root-ca", "SANs       DNS:localhost, IP:127.0.0.1",
		"days left", "the CA (" + certs.CA + ") verifies it: yes", `host name "127.0.0.1": matches a SAN`,
		"verdict: VERIFY_IDENTITY works",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// TestCheckCNOnly: the guide's CN-only certificate passes VERIFY_IDENTITY
// on its CN, and the verdict says so and what to fix.
func TestCheckCNOnly(t *testing.T) {
	servers(t)
	dsn := fmt.Sprintf("%s:%s@tcp(localhost:%d)/%s", testenv.MySQLUser, testenv.MySQLPassword, maria5.Port, testenv.MySQLDatabase)
	code, out, _ := cli(t, nil, "check", "--mode", "verify-full", "--ca", certs.ChainPEM, dsn)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"SANs       none (a CN-only certificate)", `host name "localhost": matches, on the Common Name only`, "reissue it with subjectAltName=DNS:localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// TestCheckExpired: the expired certificate fails the verifying modes with
// ErrCertExpired; the exit status follows the requested mode.
func TestCheckExpired(t *testing.T) {
	servers(t)
	dsn := redisURL(redis6.TLSPort) + "?ssl-ca=" + certs.P7B
	code, out, _ := cli(t, nil, "check", "--mode", "VERIFY_IDENTITY", dsn)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"VERIFY_CA        ErrCertExpired", "EXPIRED", "verifies it: no", "strongest mode that works: REQUIRED", "renew the server certificate", "requested mode VERIFY_IDENTITY does not work"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if code, out, _ := cli(t, nil, "check", "--mode", "REQUIRED", dsn); code != 0 {
		t.Errorf("REQUIRED: exit %d\n%s", code, out)
	}
}

// TestCheckNoTLS: a server without TLS; the DSN comes from SSLCONN_DSN.
func TestCheckNoTLS(t *testing.T) {
	servers(t)
	env := map[string]string{"SSLCONN_DSN": redisURL(redis0.Port)}
	code, out, _ := cli(t, env, "check", "--timeout", "2s")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"PREFERRED        connected, plaintext", "REQUIRED         ErrServerNoTLS", "the server offers no TLS here",
		"warning: the account authenticates over plaintext (ssl-mode=PREFERRED, and the server offers no TLS here): AUTH sends the password itself"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if code, _, _ := cli(t, env, "check", "--timeout", "2s", "--mode", "REQUIRED"); code != 1 {
		t.Errorf("REQUIRED against no TLS: exit %d, want 1", code)
	}
}

// TestBadInput: usage errors and bad files exit 2 with a message naming
// what to fix, and never print a password.
func TestBadInput(t *testing.T) {
	certs = testenv.GetCerts(t)
	const pw = "Cli-Secret-551"
	// Bad input fails before any connection: no server is needed.
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:1)/%s", testenv.MySQLUser, testenv.MySQLPassword, testenv.MySQLDatabase)
	tests := []struct {
		name string
		args []string
		says string
	}{
		{"no arguments", nil, "usage"},
		{"unknown command", []string{"connect"}, "usage"},
		{"check without DSN", []string{"check"}, "usage"},
		{"unknown engine", []string{"check", "--engine", "oracle", dsn}, "--engine"},
		{"unknown mode", []string{"check", "--mode", "VERIFY", dsn}, "VERIFY_IDENTITY"},
		{"engine not recognisable", []string{"check", "host=db;pwd=" + pw}, "--engine"},
		{"DSN the adapter rejects", []string{"check", "redis://:" + pw + "@localhost:1/0?ssl-mode=sometimes"}, "ssl-mode"},
		{"missing CA file", []string{"check", "--ca", "/nonexistent/ca.pem", dsn}, "/nonexistent/ca.pem"},
		{"wrong keystore password", []string{"check", "--ca", certs.JKS, "--ca-password", pw, dsn}, "keystore password"},
		{"inspect a non-certificate", []string{"ca", "inspect", certs.Client.Key}, "invalid CA input"},
		{"convert without --to", []string{"ca", "convert", certs.CA}, "--to"},
		{"convert to an unknown format", []string{"ca", "convert", "--to", "pfx", certs.CA}, "pem, p7b, p7b-der, jks"},
		{"unknown flag", []string{"ca", "inspect", "--pasword", "x", certs.CA}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, tt.says) {
				t.Errorf("stderr does not say %q:\n%s", tt.says, errOut)
			}
			if strings.Contains(out+errOut, pw) {
				t.Errorf("password in the output")
			}
		})
	}
}

// TestCA: inspect reads every format of the console's download; convert
// writes each format that inspect, and keytool's JKS reader, read back.
func TestCA(t *testing.T) {
	certs = testenv.GetCerts(t)
	for name, file := range map[string]string{"PEM": certs.ChainPEM, "DER": certs.CADER, "P7B": certs.P7B, "P7B-DER": certs.P7BDER, "JKS": certs.JKS, "zip": certs.Zip} {
		t.Run("inspect/"+name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, "ca", "inspect", file)
			if code != 0 || !strings.Contains(out, "[0] CN=root-ca") || !strings.Contains(out, "SHA-256    ") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
		})
	}
	t.Run("inspect/expired", func(t *testing.T) {
		code, out, errOut := cli(t, nil, "ca", "inspect", "--json", certs.Expired.Cert)
		var got []check.Cert
		if code != 1 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || got[0].DaysLeft >= 0 || !strings.Contains(errOut, "warning") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	})
	dir := t.TempDir()
	for _, to := range check.Formats {
		t.Run("convert/"+to, func(t *testing.T) {
			out := filepath.Join(dir, "ca."+to)
			env := map[string]string{"SSLCONN_OUT_PASSWORD": "Out-Secret-77", "SSLCONN_CA_PASSWORD": "Out-Secret-77"}
			if code, _, errOut := cli(t, env, "ca", "convert", "--to", to, "--out", out, certs.Zip); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			code, got, errOut := cli(t, env, "ca", "inspect", out)
			if code != 0 || !strings.Contains(got, "[0] CN=root-ca") {
				t.Fatalf("inspect %s: exit %d\n%s%s", to, code, got, errOut)
			}
		})
	}
	t.Run("convert/stdout", func(t *testing.T) {
		code, out, _ := cli(t, nil, "ca", "convert", "--to", "pem", certs.JKS)
		want, _ := os.ReadFile(certs.CA)
		if code != 0 || out != string(want) {
			t.Fatalf("exit %d: %q", code, out)
		}
	})
}
