package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisPassword is the requirepass of every test Redis (a test fixture).
const RedisPassword = "Redis-Secret-pw1"

// StartRedisDurable starts a private Redis that keeps its data across
// restarts (appendonly, fsync on every write), for the restart tests.
func StartRedisDurable(t TLS) (*Server, error) {
	s, err := newServer("redis", true, t)
	if err != nil {
		return nil, err
	}
	s.argv, s.ready = redisArgv, redisReady
	s.extraArgs = []string{"--appendonly", "yes", "--appendfsync", "always"}
	register(s)
	if err := s.startFresh(); err != nil {
		return nil, err
	}
	return s, nil
}

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
	if err := s.startFresh(); err != nil {
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
	port, tlsPort := s.Port, s.TLSPort
	if t.OnPlainPort && !t.Off {
		tlsPort = s.Port
	}
	if (t.Force || t.OnPlainPort) && !t.Off {
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
		args = append(args, "--tls-port", strconv.Itoa(tlsPort),
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
	args = append(args, s.extraArgs...)
	return args, env, nil
}

func redisReady(s *Server) error {
	if s.TLS.OnPlainPort && !s.TLS.Off {
		return dialReady(Addr(s.Port))
	}
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

// StartRedisCluster starts n TLS-only cluster nodes (tls-cluster yes, so
// they announce their TLS ports, by IP) and joins them with redis-cli
// --cluster create, slots spread evenly, no replicas.
func StartRedisCluster(n int, t TLS, c *Certs) ([]*Server, error) {
	t.Force = true
	var nodes []*Server
	for range n {
		s, err := newServer("redis-cluster", true, t)
		if err != nil {
			return nil, err
		}
		s.argv, s.ready = redisArgv, redisReady
		// The bus port defaults to port+10000, which may be taken or past 65535.
		bus, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.extraArgs = []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus), "--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
			"--tls-cluster", "yes", "--tls-replication", "yes", "--masterauth", RedisPassword,
			"--cluster-node-timeout", "5000", "--appendonly", "yes", "--appendfsync", "always",
			// The bus always verifies the connecting node's certificate, and
			// the server certificate is for serverAuth only.
			"--tls-client-cert-file", c.Client.Cert, "--tls-client-key-file", c.Client.Key}
		register(s)
		if err := s.startFresh(); err != nil {
			return nil, err
		}
		nodes = append(nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range nodes {
		args = append(args, Addr(s.TLSPort))
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes", "--tls", "--cacert", c.CA,
		"--cert", c.Client.Cert, "--key", c.Client.Key, "-a", RedisPassword, "--no-auth-warning")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node agrees the cluster is up.
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range nodes {
		for {
			out, _ := exec.Command("redis-cli", "-p", strconv.Itoa(s.TLSPort), "--tls", "--cacert", c.CA,
				"--cert", c.Client.Cert, "--key", c.Client.Key, "-a", RedisPassword, "--no-auth-warning", "CLUSTER", "INFO").CombinedOutput()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("cluster not ok after 30s: %s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes, nil
}
