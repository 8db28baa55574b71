package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// swapCopy copies p into dir as swap-cert.pem and swap-key.pem, the files
// a Swappable MariaDB reads its certificate from, and returns them.
func swapCopy(dir string, p Pair) (Pair, error) {
	to := Pair{filepath.Join(dir, "swap-cert.pem"), filepath.Join(dir, "swap-key.pem")}
	for _, f := range [][2]string{{p.Cert, to.Cert}, {p.Key, to.Key}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return Pair{}, err
		}
		if err := os.WriteFile(f[1]+".tmp", b, 0o600); err != nil {
			return Pair{}, err
		}
		if err := os.Rename(f[1]+".tmp", f[1]); err != nil {
			return Pair{}, err
		}
	}
	return to, nil
}

// SetCert gives the running server another certificate, in milliseconds
// and without a restart: MariaDB (started with TLS.Swappable) by FLUSH
// SSL, Redis by CONFIG SET tls-cert-file (on its plaintext port, so not
// with TLS.Force). New connections get the new certificate; a later
// Start keeps it.
func (s *Server) SetCert(p Pair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(s.Name, "mariadb"):
		if !s.TLS.Swappable {
			return fmt.Errorf("testenv: SetCert: %s was not started with TLS.Swappable", s.Name)
		}
		if _, err := swapCopy(s.Dir, p); err != nil {
			return err
		}
		if out, err := s.MySQL("FLUSH SSL"); err != nil {
			return fmt.Errorf("testenv: FLUSH SSL: %v: %s", err, out)
		}
	case strings.HasPrefix(s.Name, "redis"):
		ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(s.Port), "-a", RedisPassword, "--no-auth-warning",
			"CONFIG", "SET", "tls-cert-file", p.Cert, "tls-key-file", p.Key).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			return fmt.Errorf("testenv: redis CONFIG SET tls-cert-file: %v: %s", err, out)
		}
	default:
		return fmt.Errorf("testenv: SetCert: %s cannot change its certificate", s.Name)
	}
	s.TLS.Cert = p
	return nil
}
