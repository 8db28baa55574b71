package testenv

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/netns"
)

// Time limits of the harness. A server is ready in about a second and
// stops in milliseconds on an idle machine, and within a few seconds on a
// loaded 2-core box running other test packages; these leave room for a
// machine twice as slow as that, and still end a real hang with an error.
const (
	// ReadyTimeout bounds a server's start-up, until it accepts connections.
	ReadyTimeout = 120 * time.Second
	// TermTimeout is how long Stop waits after SIGTERM before SIGKILL.
	TermTimeout = 20 * time.Second
	// KillTimeout is how long Stop waits after SIGKILL before it gives up
	// and returns an error naming the server and its pid.
	KillTimeout = 10 * time.Second
	// CommandTimeout bounds one client command the harness runs (redis-cli,
	// mariadb): milliseconds, unless the server hangs.
	CommandTimeout = 30 * time.Second
)

// TLS describes a server's TLS set-up: the scenarios of the contract are
// values of it (see Scenario).
type TLS struct {
	Off        bool   // no TLS at all (S0)
	Cert       Pair   // server certificate and key
	CA         string // CA for client certificates
	Force      bool   // reject plaintext clients (S2)
	Versions   string // e.g. "TLSv1,TLSv1.1" (S7); empty: the server's default
	ClientAuth bool   // require a client certificate
	// OnPlainPort serves TLS on Port, with no plaintext listener: for Redis
	// and FerretDB, which otherwise keep them on separate ports, this is a
	// TLS-only endpoint at the address a plaintext one had ("enable SSL").
	OnPlainPort bool
	// Weak runs the server's OpenSSL at security level 0, as legacy
	// instances are, so that it loads a certificate signed with SHA-1.
	// Versions set it too: OpenSSL 3 serves TLS 1.0/1.1 at level 0 only.
	Weak bool
	// Ciphers is the server's cipher list for TLS 1.2 and below in
	// OpenSSL's syntax (MariaDB ssl_cipher, Redis tls-ciphers), e.g.
	// "AES256-SHA"; empty: the server's default.
	Ciphers string
	// Swappable lets SetCert change the certificate of the running
	// server (MariaDB reads it from a copy in its own directory).
	Swappable bool
}

// Scenario returns the TLS set-up of scenario S0-S7 of the contract.
func Scenario(c *Certs, s int) TLS {
	switch s {
	case 0:
		return TLS{Off: true}
	case 1:
		return TLS{Cert: c.SAN, CA: c.CA}
	case 2:
		return TLS{Cert: c.SAN, CA: c.CA, Force: true}
	case 3:
		return TLS{Cert: c.OtherHost, CA: c.CA}
	case 4:
		return TLS{Cert: c.MITM, CA: c.CA}
	case 5:
		return TLS{Cert: c.CNOnly, CA: c.CA}
	case 6:
		return TLS{Cert: c.Expired, CA: c.CA}
	case 7:
		return TLS{Cert: c.SAN, CA: c.CA, Versions: "TLSv1,TLSv1.1"}
	}
	panic("testenv: no scenario S" + strconv.Itoa(s))
}

// ScenarioNames describes S0-S7 for test names.
var ScenarioNames = []string{
	"S0-no-TLS", "S1-TLS-optional", "S2-TLS-forced", "S3-other-host",
	"S4-other-CA", "S5-CN-only", "S6-expired", "S7-TLS1.0-1.1",
}

// Server is one private server process on loopback ports. Stop and Start
// keep its ports and data, so tests can restart it with another TLS set-up.
type Server struct {
	Name    string
	Dir     string
	Port    int // plaintext (MariaDB: the only port)
	TLSPort int // Redis and FerretDB: the TLS listener, 0 if none
	TLS     TLS

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	argv    func(*Server) ([]string, []string, error) // command line and extra env
	ready   func(*Server) error
	logFile string
	// extraArgs are appended to the command line (Redis cluster settings).
	extraArgs []string
	// host, if set, runs the server inside a test host of its own instead
	// of on loopback (see StartOn).
	host *netns.Host
}

// onHost places the server in test host h (nil: loopback) on the engine's
// usual ports: a host's namespace is its own, so they are free, and the
// hosts of one test share them, as the nodes behind a moving name do.
func (s *Server) onHost(h *netns.Host, port, tlsPort int) {
	if h == nil {
		return
	}
	s.host, s.Port = h, port
	if s.TLSPort != 0 {
		s.TLSPort = tlsPort
	}
}

// Addr returns the server's address for port: on loopback, or on its test
// host.
func (s *Server) Addr(port int) string {
	if s.host != nil {
		return s.host.Addr(port)
	}
	return Addr(port)
}

// IP is the address the server listens on.
func (s *Server) IP() string {
	if s.host != nil {
		return s.host.IP
	}
	return "127.0.0.1"
}

// bind lists the addresses the server listens on.
func (s *Server) bind() []string {
	if s.host != nil {
		return []string{s.host.IP}
	}
	return []string{"127.0.0.1", "::1"}
}

var (
	serversMu sync.Mutex
	servers   []*Server
)

func register(s *Server) {
	serversMu.Lock()
	servers = append(servers, s)
	serversMu.Unlock()
}

// stopAll stops every registered server, all at once (each Stop is
// bounded), and reports the ones that did not stop.
func stopAll() error {
	serversMu.Lock()
	list := servers
	servers = nil
	serversMu.Unlock()
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // ports handed out in this process
)

// FreePort returns a port free on 127.0.0.1 and ::1 at the time of asking,
// never the same one twice in a process. Another process may still take it
// before the server binds it: startFresh retries that case.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if given[port] {
			continue
		}
		given[port] = true
		if l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(port)); err == nil {
			l6.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port on both 127.0.0.1 and ::1")
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Start starts the process and waits until it is ready.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("%s already running", s.Name)
	}
	args, env, err := s.argv(s)
	if err != nil {
		return err
	}
	if s.host != nil {
		args = s.host.Command(args...)
	}
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, and on Linux killed if the test binary dies.
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(ReadyTimeout)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("%s exited at start-up; log %s:\n%s", s.Name, s.logFile, tail(s.logFile))
		default:
		}
		if err = s.ready(s); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			if serr := s.stopLocked(); serr != nil {
				err = errors.Join(err, serr)
			}
			return fmt.Errorf("%s not ready after %v: %v; log:\n%s", s.Name, ReadyTimeout, err, tail(s.logFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop terminates the process (SIGTERM, then SIGKILL after TermTimeout;
// on Windows it is killed at once) and waits for it to exit, at most
// KillTimeout after the kill: then it returns an error naming the server
// and its pid, and the server counts as still running.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	_ = terminate(s.cmd)
	term := time.NewTimer(TermTimeout)
	defer term.Stop()
	select {
	case <-s.done:
		s.cmd = nil
		return nil
	case <-term.C:
	}
	_ = kill(s.cmd)
	killed := time.NewTimer(KillTimeout)
	defer killed.Stop()
	select {
	case <-s.done:
		s.cmd = nil
		return nil
	case <-killed.C:
		return fmt.Errorf("testenv: %s (pid %d) still running %v after SIGTERM and %v after SIGKILL",
			s.Name, s.cmd.Process.Pid, TermTimeout, KillTimeout)
	}
}

// Restart stops the server and starts it on the same ports with tls.
func (s *Server) Restart(tls TLS) error {
	if err := s.Stop(); err != nil {
		return err
	}
	s.mu.Lock()
	s.TLS = tls
	s.mu.Unlock()
	return s.Start()
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string { return tail(s.logFile) }

func tail(name string) string {
	b, _ := os.ReadFile(name)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func dialReady(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// newServer allocates ports and a directory.
func newServer(name string, tlsPort bool, t TLS) (*Server, error) {
	dir, err := TempDir(name)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, Dir: dir, TLS: t, logFile: filepath.Join(dir, "server.log")}
	if s.Port, err = FreePort(); err != nil {
		return nil, err
	}
	if tlsPort {
		if s.TLSPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startFresh is the first Start of a server: a port taken between FreePort
// and the bind (by another test process) gets new ports, up to three times.
func (s *Server) startFresh() error {
	var err error
	for range 3 {
		if err = s.Start(); err == nil || !strings.Contains(err.Error(), "in use") {
			return err
		}
		if s.Port, err = FreePort(); err != nil {
			return err
		}
		if s.TLSPort != 0 {
			if s.TLSPort, err = FreePort(); err != nil {
				return err
			}
		}
		os.Truncate(s.logFile, 0)
	}
	return err
}

// LookPath finds a server binary, also in the sbin folders root's PATH may lack.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: run scripts/test.sh, which installs the test servers", name)
}

// ServersNeeded tells a TestMain whether to start its servers: not in a
// fuzzing worker, nor when -run matches no test (go test -run '^$' -fuzz
// or -bench only). Call after flag.Parse.
func ServersNeeded() bool {
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return false
	}
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		if b := flag.Lookup("test.bench"); b == nil || b.Value.String() == "" {
			return false
		}
	}
	return true
}
