// Package netns makes test hosts out of Linux network namespaces, so that
// tests can cut a server off the network the way a lost host or a dead load
// balancer backend does: packets dropped, nothing answered, nothing reset.
//
// Each Host is a namespace joined to the test's own namespace by a veth
// pair with a /30 of its own in 198.18.0.0/15 (RFC 2544's range for
// benchmark networks, which no real network routes). A server started with
// Host.Command runs inside it and listens on Host.Addr. Silence adds
// blackhole rules inside the host; Speak removes them. Names set with
// SetName go into /etc/hosts under a lock, for tests that move a name from
// one host to another.
//
// Everything needs root (CAP_NET_ADMIN) and the ip command: Available says
// why not. Close removes what New made; New also removes what a test binary
// that died before its Close left behind.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// prefix starts every namespace and link name this package makes; the
// owning process id follows it, so a later run can tell leftovers apart.
const prefix = "sslc"

// cmdTimeout bounds one ip command: milliseconds normally.
const cmdTimeout = 30 * time.Second

// Host is one test host: a network namespace with its own address.
type Host struct {
	Name string // the namespace
	IP   string // the host's address, reachable from the test process
	gw   string // the test process's end of the link
	link string // the test process's end of the veth pair

	mu     sync.Mutex
	silent bool
}

var (
	mu     sync.Mutex
	next   int
	swept  bool
	hostMu sync.Mutex // /etc/hosts, within this process
)

// Available returns nil when this process can make test hosts, else the
// reason: not Linux, not root, or no ip command.
func Available() error {
	if runtime.GOOS != "linux" {
		return errors.New("network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is missing")
	}
	return nil
}

// New makes a host. The caller must Close it; t.Cleanup(h.Close) is the
// usual way.
func New() (*Host, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	mu.Lock()
	if !swept {
		sweep()
		swept = true
	}
	n := next
	next++
	mu.Unlock()
	if n >= 4096 {
		return nil, errors.New("netns: too many hosts in one process")
	}
	pid := os.Getpid()
	// Link names are at most 15 bytes: "sslc" + pid (≤ 7 digits) + "h" + n.
	h := &Host{
		Name: fmt.Sprintf("%s%d-%d", prefix, pid, n),
		link: fmt.Sprintf("%s%dh%d", prefix, pid%10000000, n),
	}
	// A /30 per host in 198.18.0.0/15, chosen under a machine-wide lock
	// among those no interface uses: test binaries run side by side.
	unlock, err := lockMachine()
	if err != nil {
		return nil, err
	}
	defer func() { unlock() }()
	block, err := freeBlock((pid*64 + n) % blocks)
	if err != nil {
		return nil, err
	}
	base := blockBase(block)
	h.gw = net.IPv4(base[0], base[1], base[2], base[3]+1).String()
	h.IP = net.IPv4(base[0], base[1], base[2], base[3]+2).String()
	peer := h.link + "n"
	steps := [][]string{
		{"netns", "add", h.Name},
		{"link", "add", h.link, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", h.Name},
		{"addr", "add", h.gw + "/30", "dev", h.link},
		{"link", "set", h.link, "up"},
		{"-n", h.Name, "addr", "add", h.IP + "/30", "dev", peer},
		{"-n", h.Name, "link", "set", peer, "up"},
		{"-n", h.Name, "link", "set", "lo", "up"},
		// Silence's rules must come before the local table, which the
		// kernel consults first (pref 0): move it behind them.
		{"-n", h.Name, "rule", "add", "pref", "100", "lookup", "local"},
		{"-n", h.Name, "rule", "del", "pref", "0"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// blocks is how many /30s 198.18.0.0/15 holds.
const blocks = 32768

// blockBase is the first address of /30 number b.
func blockBase(b int) net.IP {
	base := net.IPv4(198, 18, 0, 0).To4()
	off := b * 4
	base[1] += byte(off >> 16)
	base[2] = byte(off >> 8)
	base[3] = byte(off)
	return base
}

// freeBlock is the first /30 from start on that no interface here uses.
func freeBlock(start int) (int, error) {
	used := map[int]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, err
	}
	_, bench, _ := net.ParseCIDR("198.18.0.0/15")
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && bench.Contains(n.IP) {
			ip := n.IP.To4()
			used[((int(ip[1])-18)<<16|int(ip[2])<<8|int(ip[3]))/4] = true
		}
	}
	for i := range blocks {
		if b := (start + i) % blocks; !used[b] {
			return b, nil
		}
	}
	return 0, errors.New("netns: no free /30 in 198.18.0.0/15")
}

// Addr returns "IP:port" on the host.
func (h *Host) Addr(port int) string { return net.JoinHostPort(h.IP, strconv.Itoa(port)) }

// Command returns argv run inside the host's namespace (ip netns exec
// execs the command, so its pid and signals are the server's own).
func (h *Host) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.Name}, argv...)
}

// Silence drops every packet between the test process and the host, both
// ways, inside the host: the test's packets leave and vanish, as they do
// toward a lost host, and the host neither answers nor resets.
func (h *Host) Silence() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.silent {
		return nil
	}
	if err := ip(h.rule("add", "1", "from")...); err != nil {
		return err
	}
	if err := ip(h.rule("add", "2", "to")...); err != nil {
		return errors.Join(err, ip(h.rule("del", "1", "from")...))
	}
	h.silent = true
	return nil
}

// Speak undoes Silence.
func (h *Host) Speak() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.silent {
		return nil
	}
	h.silent = false
	return errors.Join(ip(h.rule("del", "1", "from")...), ip(h.rule("del", "2", "to")...))
}

// rule is the policy rule that blackholes packets from or to the test's end.
func (h *Host) rule(op, pref, dir string) []string {
	return []string{"-n", h.Name, "rule", op, "pref", pref, dir, h.gw + "/32", "blackhole"}
}

// Close removes the host: its namespace, link and routes. Processes still
// running inside keep the namespace alive only as long as they run; stop
// them first.
func (h *Host) Close() error {
	var errs []error
	// Deleting one end of a veth pair deletes both; the namespace takes
	// its rules with it.
	if linkExists(h.link) {
		errs = append(errs, ip("link", "del", h.link))
	}
	if nsExists(h.Name) {
		errs = append(errs, ip("netns", "del", h.Name))
	}
	return errors.Join(errs...)
}

func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	done := make(chan struct{})
	timer := time.AfterFunc(cmdTimeout, func() {
		select {
		case <-done:
		default:
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// sweep removes the namespaces and links of test binaries that are gone.
func sweep() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if owner, ok := ownerPID(strings.SplitN(e.Name(), "-", 2)[0]); ok && !alive(owner) {
			ip("netns", "del", e.Name())
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		name := l.Name()
		i := strings.LastIndexByte(name, 'h')
		if i < 0 {
			continue
		}
		if owner, ok := ownerPID(name[:i]); ok && !alive(owner) {
			ip("link", "del", name)
		}
	}
}

// ownerPID reads the pid out of "sslc<pid>".
func ownerPID(s string) (int, bool) {
	if !strings.HasPrefix(s, prefix) {
		return 0, false
	}
	pid, err := strconv.Atoi(s[len(prefix):])
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// Reset aborts, inside the host, every TCP connection the test process has
// with it (ss -K): the host's kernel sends a reset for each, as a server
// host does when a firewall or a crashed process's kernel drops its
// connections, while the server itself stays up and accepts new ones.
// It needs a kernel built with sock_destroy (CONFIG_INET_DIAG_DESTROY).
func (h *Host) Reset() error {
	return ip("netns", "exec", h.Name, "ss", "-K", "-t", "dst", h.gw)
}
