package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

// tlsState dials addr with TLS, trusting the test CA, and returns the version.
func tlsState(t *testing.T, c *Certs, addr string) (uint16, error) {
	t.Helper()
	pem, err := os.ReadFile(c.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().Version, nil
}

// TestMariaDB starts MariaDB in TLS-off, optional and forced set-ups and
// connects with the mariadb client, as a user following the guide would.
func TestMariaDB(t *testing.T) {
	skipShort(t)
	c := GetCerts(t)
	s, err := StartMariaDB(Scenario(c, 1))
	if err != nil {
		t.Fatal(err)
	}
	cli := func(extra ...string) (string, error) {
		args := append([]string{"--no-defaults", "-h127.0.0.1", "-P" + strconv.Itoa(s.Port), "-u" + MySQLUser, "-p" + MySQLPassword, "-N", "-B"}, extra...)
		out, err := exec.Command("mariadb", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := cli("--ssl", "--ssl-ca="+c.CA, "--ssl-verify-server-cert", "-e", "SHOW STATUS LIKE 'Ssl_version'")
	if err != nil || !strings.Contains(out, "TLSv1.") {
		t.Fatalf("TLS login: %v %s", err, out)
	}
	out, err = cli("--skip-ssl", "-e", "SHOW STATUS LIKE 'Ssl_version'")
	if err != nil || strings.Contains(out, "TLSv1") {
		t.Fatalf("plaintext login on optional TLS: %v %q", err, out)
	}

	if err := s.Restart(Scenario(c, 2)); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("--skip-ssl", "-e", "SELECT 1"); err == nil {
		t.Fatalf("plaintext login accepted with require_secure_transport: %s", out)
	}
	if err := s.Restart(Scenario(c, 0)); err != nil {
		t.Fatal(err)
	}
	out, err = cli("--skip-ssl", "-e", "SHOW VARIABLES LIKE 'have_ssl'")
	if err != nil || !strings.Contains(out, "DISABLED") {
		t.Fatalf("TLS-off server: %v %q", err, out)
	}
	if err := s.Restart(Scenario(c, 7)); err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir() + "/openssl.cnf"
	if err := os.WriteFile(conf, []byte(legacyOpenSSL), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENSSL_CONF", conf) // the client's OpenSSL refuses TLS 1.1 too, by default
	out, err = cli("--ssl", "--ssl-ca="+c.CA, "--tls-version=TLSv1.1", "-e", "SHOW STATUS LIKE 'Ssl_version'")
	if err != nil || !strings.Contains(out, "TLSv1.1") {
		t.Fatalf("legacy TLS server: %v %q", err, out)
	}
}

func TestRedis(t *testing.T) {
	skipShort(t)
	c := GetCerts(t)
	s, err := StartRedis(Scenario(c, 1))
	if err != nil {
		t.Fatal(err)
	}
	cli := func(port int, extra ...string) (string, error) {
		args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--no-auth-warning", "-a", RedisPassword}, extra...)
		args = append(args, "PING")
		out, err := exec.Command("redis-cli", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := cli(s.TLSPort, "--tls", "--cacert", c.CA, "--sni", "localhost"); err != nil || out != "PONG" {
		t.Fatalf("redis-cli --tls: %v %q", err, out)
	}
	if out, err := cli(s.Port); err != nil || out != "PONG" {
		t.Fatalf("redis-cli plaintext: %v %q", err, out)
	}
	if err := s.Restart(Scenario(c, 2)); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(s.Port); err == nil && out == "PONG" {
		t.Fatalf("plaintext port still open when TLS is forced")
	}
	if err := s.Restart(Scenario(c, 7)); err != nil {
		t.Fatal(err)
	}
	v, err := tlsState(t, c, Addr(s.TLSPort))
	if err != nil || v > tls.VersionTLS11 {
		t.Fatalf("legacy TLS Redis: version %x, %v", v, err)
	}
}

func TestFerretDB(t *testing.T) {
	skipShort(t)
	c := GetCerts(t)
	s, err := StartFerretDB(Scenario(c, 1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tlsState(t, c, Addr(s.TLSPort)); err != nil || v < tls.VersionTLS12 {
		t.Fatalf("FerretDB TLS listener: %x %v", v, err)
	}
	if err := s.Restart(Scenario(c, 7)); err != nil {
		t.Fatal(err)
	}
	if v, err := tlsState(t, c, Addr(s.TLSPort)); err != nil || v > tls.VersionTLS11 {
		t.Fatalf("legacy TLS FerretDB: version %x, %v", v, err)
	}
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}

// skipShort skips a test that starts servers when the tests run with -short.
func skipShort(t *testing.T) {
	t.Helper()
	if Short() {
		t.Skip("needs database servers; not run with -short")
	}
}
