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

	"github.com/sslconn/sslconn/internal/testkit/netns"
)

// RedisPassword is the requirepass of every test Redis (a test fixture).
const RedisPassword = "Redis-Secret-pw1"

// clusterTimeout bounds forming a cluster, and a Sentinel set-up agreeing
// (a second or two on an idle machine).
const clusterTimeout = 2 * time.Minute

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
func StartRedis(t TLS) (*Server, error) { return StartRedisOn(nil, t) }

// StartRedisOn is StartRedis inside test host h (nil: loopback).
func StartRedisOn(h *netns.Host, t TLS) (*Server, error) {
	s, err := newServer("redis", true, t)
	if err != nil {
		return nil, err
	}
	s.onHost(h, 6379, 6380)
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
	args := []string{bin, "--port", strconv.Itoa(port), "--bind", strings.Join(s.bind(), " "),
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
		if t.Versions != "" || t.Weak {
			conf := filepath.Join(s.Dir, "openssl-legacy.cnf")
			if err := os.WriteFile(conf, []byte(legacyOpenSSL), 0o644); err != nil {
				return nil, nil, err
			}
			env = append(env, "OPENSSL_CONF="+conf)
		}
		if t.Versions != "" {
			args = append(args, "--tls-protocols", strings.ReplaceAll(t.Versions, ",", " "))
		}
		if t.Ciphers != "" {
			args = append(args, "--tls-ciphers", t.Ciphers)
		}
	}
	args = append(args, s.extraArgs...)
	return args, env, nil
}

func redisReady(s *Server) error {
	if s.TLS.OnPlainPort && !s.TLS.Off {
		return dialReady(s.Addr(s.Port))
	}
	if s.TLS.Force && !s.TLS.Off {
		return dialReady(s.Addr(s.TLSPort))
	}
	if err := dialReady(s.Addr(s.Port)); err != nil {
		return err
	}
	if !s.TLS.Off {
		return dialReady(s.Addr(s.TLSPort))
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
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node agrees the cluster is up (a second or two).
	deadline := time.Now().Add(clusterTimeout)
	for _, s := range nodes {
		for {
			out, _ := RedisCLI(s, TLS{CA: c.CA}, "--cert", c.Client.Cert, "--key", c.Client.Key, "CLUSTER", "INFO")
			if strings.Contains(out, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("cluster not ok after %v: %s", clusterTimeout, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes, nil
}

// SentinelMaster is the master name StartRedisSentinel's Sentinel monitors.
const SentinelMaster = "mymaster"

// StartRedisSentinel starts a TLS-only Redis master, a replica of it
// (replication over TLS) and a TLS-only Sentinel monitoring the master as
// SentinelMaster, announcing both by IP (the SAN certificate carries
// 127.0.0.1). The Sentinel's own password is RedisPassword too.
func StartRedisSentinel(t TLS) (master, replica, sentinel *Server, err error) {
	t.Force = true
	node := func(extra ...string) (*Server, error) {
		s, err := newServer("redis-sentinel-node", true, t)
		if err != nil {
			return nil, err
		}
		s.argv, s.ready = redisArgv, redisReady
		// No 5 s wait for more replicas before the first sync.
		s.extraArgs = append([]string{"--tls-replication", "yes", "--masterauth", RedisPassword,
			"--replica-announce-ip", "127.0.0.1", "--repl-diskless-sync-delay", "0"}, extra...)
		register(s)
		return s, s.startFresh()
	}
	if master, err = node(); err != nil {
		return nil, nil, nil, err
	}
	if replica, err = node("--replicaof", "127.0.0.1", strconv.Itoa(master.TLSPort)); err != nil {
		return nil, nil, nil, err
	}
	if sentinel, err = newServer("redis-sentinel", true, t); err != nil {
		return nil, nil, nil, err
	}
	sentinel.argv, sentinel.ready = sentinelArgv(master), redisReady
	register(sentinel)
	if err := sentinel.startFresh(); err != nil {
		return nil, nil, nil, err
	}
	// Ready when the replica is in sync and the Sentinel has found it.
	deadline := time.Now().Add(clusterTimeout)
	for {
		out, _ := RedisCLI(sentinel, t, "SENTINEL", "REPLICAS", SentinelMaster)
		info, _ := RedisCLI(replica, t, "INFO", "replication")
		if strings.Contains(out, strconv.Itoa(replica.TLSPort)) && strings.Contains(info, "master_link_status:up") {
			return master, replica, sentinel, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, nil, fmt.Errorf("sentinel sees no replica after %v: %s\n%s", clusterTimeout, out, sentinel.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sentinelArgv writes the Sentinel's config (it rewrites the file as it
// learns) and runs redis-server --sentinel on it.
func sentinelArgv(master *Server) func(*Server) ([]string, []string, error) {
	return func(s *Server) ([]string, []string, error) {
		bin, err := LookPath("redis-server")
		if err != nil {
			return nil, nil, err
		}
		conf := filepath.Join(s.Dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			t := s.TLS
			text := fmt.Sprintf(`port 0
bind 127.0.0.1
tls-port %d
tls-cert-file %s
tls-key-file %s
tls-ca-cert-file %s
tls-auth-clients no
tls-replication yes
dir %s
requirepass %s
sentinel announce-ip 127.0.0.1
sentinel monitor %s 127.0.0.1 %d 1
sentinel auth-pass %s %s
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
`, s.TLSPort, t.Cert.Cert, t.Cert.Key, t.CA, s.Dir, RedisPassword,
				SentinelMaster, master.TLSPort, SentinelMaster, RedisPassword, SentinelMaster, SentinelMaster)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				return nil, nil, err
			}
		}
		return []string{bin, conf, "--sentinel"}, nil, nil
	}
}

// RedisCLI runs redis-cli against a TLS-only server s set up with t,
// for at most CommandTimeout.
func RedisCLI(s *Server, t TLS, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	argv := append([]string{"-p", strconv.Itoa(s.TLSPort), "--tls", "--cacert", t.CA, "-a", RedisPassword, "--no-auth-warning"}, args...)
	out, err := exec.CommandContext(ctx, "redis-cli", argv...).CombinedOutput()
	return string(out), err
}
