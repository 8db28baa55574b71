package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RedisPassword is the requirepass of every test Redis (a test fixture).
const RedisPassword = "Redis-Secret-pw1"

// StartRedis starts a private Redis. Redis puts plaintext and TLS on separate
// ports: Port is plaintext (closed when TLS.Force), TLSPort is TLS (closed
// when TLS.Off).
func StartRedis(t TLS) (*Server, error) {
	s, err := newServer("redis", true, t)
	if err != nil {
		return nil, err
	}
	s.argv, s.ready = redisArgv, redisReady
	register(s)
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

func redisArgv(s *Server) ([]string, []string, error) {
	bin, err := LookPath("redis-server")
	if err != nil {
		return nil, nil, err
	}
	t := s.TLS
	port := s.Port
	if t.Force && !t.Off {
		port = 0
	}
	args := []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1 ::1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir, "--daemonize", "no",
		"--requirepass", RedisPassword, "--protected-mode", "no"}
	var env []string
	if !t.Off {
		auth := "no"
		if t.ClientAuth {
			auth = "yes"
		}
		args = append(args, "--tls-port", strconv.Itoa(s.TLSPort),
			"--tls-cert-file", t.Cert.Cert, "--tls-key-file", t.Cert.Key,
			"--tls-ca-cert-file", t.CA, "--tls-auth-clients", auth)
		if t.Versions != "" {
			conf := filepath.Join(s.Dir, "openssl-legacy.cnf")
			if err := os.WriteFile(conf, []byte(legacyOpenSSL), 0o644); err != nil {
				return nil, nil, err
			}
			env = append(env, "OPENSSL_CONF="+conf)
			args = append(args, "--tls-protocols", strings.ReplaceAll(t.Versions, ",", " "))
		}
	}
	return args, env, nil
}

func redisReady(s *Server) error {
	if s.TLS.Force && !s.TLS.Off {
		return dialReady(Addr(s.TLSPort))
	}
	if err := dialReady(Addr(s.Port)); err != nil {
		return err
	}
	if !s.TLS.Off {
		return dialReady(Addr(s.TLSPort))
	}
	return nil
}
