package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sslconn/sslconn/internal/testkit/netns"
)

// MariaDB accounts in every instance. The passwords are test fixtures.
const (
	MySQLUser         = "app"
	MySQLPassword     = "App-Secret-pw1"
	MySQLSSLUser      = "ssluser" // REQUIRE SSL
	MySQLSSLPassword  = "Ssl-Secret-pw1"
	MySQLX509User     = "x509user" // REQUIRE X509
	MySQLX509Password = "X509-Secret-pw1"
	MySQLDatabase     = "sslconn_test"
)

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// legacyOpenSSL lets mariadbd offer TLS 1.0/1.1 (S7): OpenSSL 3 refuses them
// at its default security level.
const legacyOpenSSL = `openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
`

// mariadbTemplate initialises one data directory with the test accounts;
// each instance starts from a copy (seconds saved per instance).
func mariadbTemplate() (string, error) {
	templateOnce.Do(func() {
		templateDir, templateErr = makeMariaDBTemplate()
	})
	return templateDir, templateErr
}

func makeMariaDBTemplate() (string, error) {
	installDB, err := LookPath("mariadb-install-db")
	if err != nil {
		return "", err
	}
	root, err := TempDir("mariadb-template")
	if err != nil {
		return "", err
	}
	data := filepath.Join(root, "data")
	// A private tmpdir: two test runs on one machine must not share the
	// bootstrap's temporary tables in /tmp (seen: "Error on delete of
	// '/tmp/#sql-temptable-…'" when two runs started at once).
	out, err := exec.Command(installDB, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
		"--tmpdir="+root).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	s, err := newServer("mariadb-init", false, TLS{Off: true})
	if err != nil {
		return "", err
	}
	s.Dir = root
	s.argv, s.ready = mariadbArgv, mariadbReady
	if err := s.startFresh(); err != nil {
		return "", err
	}
	defer s.Stop()
	sql := strings.Join([]string{
		"CREATE DATABASE " + MySQLDatabase,
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", MySQLUser, MySQLPassword),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s' REQUIRE SSL", MySQLSSLUser, MySQLSSLPassword),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s' REQUIRE X509", MySQLX509User, MySQLX509Password),
		"GRANT ALL ON *.* TO '" + MySQLUser + "'@'%'",
		"GRANT ALL ON *.* TO '" + MySQLSSLUser + "'@'%'",
		"GRANT ALL ON *.* TO '" + MySQLX509User + "'@'%'",
	}, ";\n") + ";"
	if out, err := s.MySQL(sql); err != nil {
		return "", fmt.Errorf("create accounts: %v\n%s", err, out)
	}
	return root, nil
}

// MySQL runs SQL as root over the instance's socket with the mariadb
// client, for at most CommandTimeout.
func (s *Server) MySQL(sql string) (string, error) {
	client, err := LookPath("mariadb")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, client, "--no-defaults", "--socket="+filepath.Join(s.Dir, "mysqld.sock"), "-uroot", "-N", "-B", "-e", sql)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mariadbArgv(s *Server) ([]string, []string, error) {
	bin, err := LookPath("mariadbd")
	if err != nil {
		return nil, nil, err
	}
	args := []string{bin, "--no-defaults",
		"--datadir=" + filepath.Join(s.Dir, "data"),
		"--socket=" + filepath.Join(s.Dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--tmpdir=" + s.Dir, // private, as the bootstrap's

		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=" + strings.Join(s.bind(), ","),
		"--user=root", "--skip-name-resolve", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=16M",
		"--performance-schema=OFF", "--max-connections=200",
		"--log-error=" + filepath.Join(s.Dir, "error.log"),
	}
	// Replication (StartReplication) turns the binary log back on.
	args = append(args, s.extraArgs...)
	var env []string
	t := s.TLS
	if t.Off {
		args = append(args, "--skip-ssl")
	} else {
		cert := t.Cert
		if t.Swappable {
			if cert, err = swapCopy(s.Dir, t.Cert); err != nil {
				return nil, nil, err
			}
		}
		args = append(args, "--ssl-cert="+cert.Cert, "--ssl-key="+cert.Key)
		if t.CA != "" {
			args = append(args, "--ssl-ca="+t.CA)
		}
		if t.Force {
			args = append(args, "--require-secure-transport=ON")
		}
		if t.Versions != "" || t.Weak {
			conf := filepath.Join(s.Dir, "openssl-legacy.cnf")
			if err := os.WriteFile(conf, []byte(legacyOpenSSL), 0o644); err != nil {
				return nil, nil, err
			}
			env = append(env, "OPENSSL_CONF="+conf)
		}
		if t.Versions != "" {
			v := strings.ReplaceAll(t.Versions+",", "TLSv1,", "TLSv1.0,")
			args = append(args, "--tls-version="+strings.TrimSuffix(v, ","))
		}
		if t.Ciphers != "" {
			args = append(args, "--ssl-cipher="+t.Ciphers)
		}
	}
	return args, env, nil
}

func mariadbReady(s *Server) error {
	if err := dialReady(s.Addr(s.Port)); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(s.Dir, "mysqld.sock"))
	return err
}

// StartMariaDB starts a private MariaDB with the test accounts and tls.
func StartMariaDB(t TLS) (*Server, error) { return startMariaDB(nil, t, nil) }

// StartMariaDBOn is StartMariaDB inside test host h.
func StartMariaDBOn(h *netns.Host, t TLS) (*Server, error) { return startMariaDB(h, t, nil) }

// startMariaDB is StartMariaDB on h (nil: loopback) with extra
// command-line arguments.
func startMariaDB(h *netns.Host, t TLS, extra []string) (*Server, error) {
	tmpl, err := mariadbTemplate()
	if err != nil {
		return nil, err
	}
	s, err := newServer("mariadb", false, t)
	if err != nil {
		return nil, err
	}
	s.onHost(h, 3306, 0)
	if out, err := exec.Command("cp", "-a", filepath.Join(tmpl, "data"), filepath.Join(s.Dir, "data")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy template: %v\n%s", err, out)
	}
	s.argv, s.ready = mariadbArgv, mariadbReady
	s.extraArgs = extra
	s.logFile = filepath.Join(s.Dir, "error.log")
	register(s)
	if err := s.startFresh(); err != nil {
		return nil, err
	}
	return s, nil
}
