// Command tdsserve runs the TDS test server (internal/tdsserver) outside Go
// tests, for clients the project did not write (scripts/tds-peers.sh runs
// FreeTDS and tedious against it). It makes the test certificates with
// internal/testenv/gencerts.sh, as the tests do, starts one server per
// scenario asked for, on free loopback ports, and prints on standard output:
//
//	certs DIR                          the certificates (server-ca.crt is the CA)
//	server NAME 127.0.0.1:PORT         one line per scenario, NAME as testenv.ScenarioNames
//	ready
//	session NAME key=value ...         one line per session, when it ends
//
// It stops, removing the certificates, when standard input reaches EOF
// (unless -stdin=false), on SIGTERM or SIGINT, or after -lifetime; each
// server's Stop is bounded by tdsserver.StopTimeout. Test tooling only.
//
//	go run ./internal/tdsserver/cmd/tdsserve -scenarios S0,S1,S2
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

func main() {
	scenarios := flag.String("scenarios", "all", "comma-separated scenarios S0-S7 (or 0-7), or all")
	user := flag.String("user", "sa", "login name the servers accept")
	password := flag.String("password", "Tds-Secret-pw1", "password the servers accept")
	stdin := flag.Bool("stdin", true, "stop when standard input reaches EOF")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "stop after this long in any case")
	flag.Parse()
	if err := run(*scenarios, *user, *password, *stdin, *lifetime); err != nil {
		fmt.Fprintln(os.Stderr, "tdsserve:", err)
		os.Exit(1)
	}
}

// parseScenarios turns "all" or "S1,2,S7" into scenario numbers.
func parseScenarios(list string) ([]int, error) {
	if list == "all" {
		return []int{0, 1, 2, 3, 4, 5, 6, 7}, nil
	}
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimPrefix(strings.TrimSpace(f), "S")
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n >= len(testenv.ScenarioNames) {
			return nil, fmt.Errorf("no scenario %q: use S0-S7 or all", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(list, user, password string, stdin bool, lifetime time.Duration) (err error) {
	nums, err := parseScenarios(list)
	if err != nil {
		return err
	}
	defer testenv.Cleanup() // removes the certificates
	var tb errTB
	certs := testenv.GetCerts(&tb)
	if tb.err != nil {
		return tb.err
	}

	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf(format+"\n", args...)
	}

	var servers []*tdsserver.Server
	defer func() {
		// Stop them all at once; each Stop is bounded.
		errs := make([]error, len(servers))
		var wg sync.WaitGroup
		for i, s := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.Stop() }()
		}
		wg.Wait()
		err = errors.Join(append(errs, err)...)
	}()
	say("certs %s", certs.Dir)
	for _, n := range nums {
		name := testenv.ScenarioNames[n]
		conf, err := tdsserver.ForScenario(testenv.Scenario(certs, n), user, password)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		conf.OnSession = func(si tdsserver.SessionInfo) { say("session %s %s", name, describe(si)) }
		s, err := tdsserver.Start(conf)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		servers = append(servers, s)
		say("server %s %s", name, s.Addr())
	}
	say("ready")

	stop := make(chan string, 3)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { stop <- "signal " + (<-sig).String() }()
	if stdin {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			stop <- "end of standard input"
		}()
	}
	timer := time.NewTimer(lifetime)
	defer timer.Stop()
	select {
	case why := <-stop:
		fmt.Fprintln(os.Stderr, "tdsserve: stopping:", why)
	case <-timer.C:
		return fmt.Errorf("stopped after -lifetime %v", lifetime)
	}
	return nil
}

// errTB is the testenv.TB of a command: it keeps the failure.
type errTB struct{ err error }

func (*errTB) Helper() {}

func (t *errTB) Fatalf(format string, args ...any) { t.err = fmt.Errorf(format, args...) }

// describe formats a session's outcome as key=value pairs.
func describe(si tdsserver.SessionInfo) string {
	enc := func(v int) string {
		switch v {
		case -1:
			return "-"
		case int(tdsserver.EncryptOff):
			return "OFF"
		case int(tdsserver.EncryptOn):
			return "ON"
		case int(tdsserver.EncryptNotSup):
			return "NOT_SUP"
		case int(tdsserver.EncryptReq):
			return "REQ"
		}
		return fmt.Sprintf("%#x", v)
	}
	version := "-"
	if si.TLSVersion != 0 {
		version = strings.ReplaceAll(tls.VersionName(si.TLSVersion), " ", "v")
	}
	cipher, alpn := "-", "-"
	if si.CipherSuite != 0 {
		cipher = tls.CipherSuiteName(si.CipherSuite)
	}
	if si.ALPN != "" {
		alpn = si.ALPN
	}
	end := "eof"
	if si.Err != nil && !errors.Is(si.Err, io.EOF) {
		end = strconv.Quote(si.Err.Error())
	}
	return fmt.Sprintf("spid=%d remote=%s strict=%t client_encrypt=%s answer=%s encryption=%s tls=%s cipher=%s alpn=%s login=%t batches=%d unsupported=%d attentions=%d end=%s",
		si.Spid, si.RemoteAddr, si.Strict, enc(si.ClientEncrypt), enc(si.Answer), si.Encryption, version, cipher, alpn,
		si.LoggedIn, si.Batches, si.Unsupported, si.Attentions, end)
}
