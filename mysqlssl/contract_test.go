package mysqlssl

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/mitm"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestConflictTable: every tls= value of go-sql-driver/mysql against every
// ssl-mode (and none), through NewConnector alone: an explicit mode refines
// tls= and wins; it is an ErrInvalidOption on ssl-mode naming both only
// when they contradict (tls= off and the mode encrypts, tls= on and the mode
// is DISABLED, tls=skip-verify and the mode verifies).
func TestConflictTable(t *testing.T) {
	const (
		pw = "Conflict-Secret-pw3"
		D  = sslconn.Disabled
		P  = sslconn.Preferred
		R  = sslconn.Required
		CA = sslconn.VerifyCA
		ID = sslconn.VerifyIdentity
		X  = sslconn.Mode(0) // ErrInvalidOption
	)
	// The columns: no ssl-mode, then core.Modes (DISABLED ... VERIFY_IDENTITY).
	tests := []struct {
		tls  string // "" leaves tls= out
		want [6]sslconn.Mode
	}{
		{"", [6]sslconn.Mode{P, D, P, R, CA, ID}},
		{"false", [6]sslconn.Mode{D, D, X, X, X, X}},
		{"0", [6]sslconn.Mode{D, D, X, X, X, X}},
		{"preferred", [6]sslconn.Mode{P, D, P, R, CA, ID}},
		{"skip-verify", [6]sslconn.Mode{R, X, P, R, X, X}},
		{"true", [6]sslconn.Mode{ID, X, P, R, CA, ID}},
		{"1", [6]sslconn.Mode{ID, X, P, R, CA, ID}},
	}
	if len(core.Modes) != 5 {
		t.Fatalf("core.Modes = %v: the table has a column per mode", core.Modes)
	}
	for _, tt := range tests {
		for col, want := range tt.want {
			var params []string
			if tt.tls != "" {
				params = append(params, "tls="+tt.tls)
			}
			explicit := sslconn.Mode(0)
			if col > 0 {
				explicit = core.Modes[col-1]
				params = append(params, "ssl-mode="+explicit.String())
			}
			name := "tls=" + tt.tls + "/ssl-mode=" + explicit.String()
			t.Run(name, func(t *testing.T) {
				d := "app:" + pw + "@tcp(127.0.0.1:3306)/db?" + strings.Join(params, "&")
				c, err := NewConnector(d)
				if want != X {
					if err != nil {
						t.Fatalf("%s: %v, want mode %s", d, err, want)
					}
					if got := c.Config().Mode(); got != want {
						t.Fatalf("%s: mode %s, want %s", d, got, want)
					}
					return
				}
				if !errors.Is(err, sslconn.ErrInvalidOption) {
					t.Fatalf("%s: %v, want ErrInvalidOption", d, err)
				}
				var e *sslconn.Error
				if !errors.As(err, &e) || e.Option != "ssl-mode" {
					t.Fatalf("%s: %#v, want an *sslconn.Error on option ssl-mode", d, err)
				}
				msg := err.Error()
				for _, s := range []string{"tls=" + tt.tls, "ssl-mode=" + explicit.String()} {
					if !strings.Contains(msg, s) {
						t.Errorf("%q does not name %q", msg, s)
					}
				}
				if strings.Contains(msg, pw) {
					t.Errorf("password in %q", msg)
				}
			})
		}
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestUnavailable: a server that never answers ends in ErrUnavailable with
// the mode, the address, the attempts and the refused connection kept,
// whether the retry budget or the caller's deadline ran out.
func TestUnavailable(t *testing.T) {
	const pw = "Unavail-Secret-pw7"
	tests := []struct {
		name     string
		params   string
		mode     sslconn.Mode
		opts     []sslconn.Option
		deadline time.Duration // 0: none
	}{
		{"retry budget", "ssl-mode=REQUIRED", sslconn.Required, []sslconn.Option{sslconn.WithRetryBudget(1500 * time.Millisecond)}, 0},
		{"context deadline", "", sslconn.Preferred, nil, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := closedPort(t)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			db, err := Open("app:"+pw+"@tcp("+addr+")/db?"+tt.params, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- db.PingContext(ctx) }()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("Ping still running after 20s against a closed port")
			}
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !errors.Is(err, sslconn.ErrUnavailable) {
				t.Fatalf("%v, want ErrUnavailable", err)
			}
			var e *sslconn.Error
			if !errors.As(err, &e) {
				t.Fatalf("%#v is not an *sslconn.Error", err)
			}
			if e.Mode != tt.mode {
				t.Errorf("Mode = %s, want %s", e.Mode, tt.mode)
			}
			if !strings.Contains(e.Host, strconv.Itoa(port)) {
				t.Errorf("Host = %q, want the address %s", e.Host, addr)
			}
			if e.Attempts < 1 {
				t.Errorf("Attempts = %d", e.Attempts)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("the last cause is lost: %v", err)
			}
			if tt.deadline > 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("does not match context.DeadlineExceeded: %v", err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("password in %q", err)
			}
		})
	}
}

// TestVerifyThroughProxy: Verify and VerifyConn find the state of the
// connection that carried their query through a TCP relay, where the
// address the client dialed is not the server's: the server's own
// Ssl_version, confirmed by what the relay could read.
func TestVerifyThroughProxy(t *testing.T) {
	env := scenarios.Get(t)
	tests := []struct {
		name      string
		scenario  int
		params    string
		encrypted bool
	}{
		{"VERIFY_IDENTITY", 1, "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + env.certs.CA, true},
		{"REQUIRED", 1, "ssl-mode=REQUIRED", true},
		{"DISABLED", 1, "ssl-mode=DISABLED", false},
		{"PREFERRED without TLS", 0, "ssl-mode=PREFERRED", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mitm.Start(mitm.Config{Engine: mitm.MySQL, Attack: mitm.Relay, Upstream: testenv.Addr(env.servers[tt.scenario].Port)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			db, err := Open(appDSNAt(p.Addr(), tt.params), sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			check := func(what string, st sslconn.Status, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if st.Encrypted != tt.encrypted {
					t.Fatalf("%s: %+v, want encrypted=%t", what, st, tt.encrypted)
				}
				if tt.encrypted && (!strings.HasPrefix(st.Version, "TLSv1.") || !strings.HasPrefix(st.Cipher, "TLS_")) {
					t.Fatalf("%s: status %+v lacks a TLS version or cipher", what, st)
				}
				if !tt.encrypted && (st.Version != "" || st.Cipher != "") {
					t.Fatalf("%s: plaintext status %+v", what, st)
				}
			}
			st, err := Verify(ctx, db)
			check("Verify", st, err)
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st, err = VerifyConn(ctx, conn)
			check("VerifyConn", st, err)
			conn.Close()
			// The relay agrees: it read the query only in plaintext.
			if read := strings.Contains(string(p.Seen()), "Ssl_version"); read == tt.encrypted {
				t.Fatalf("the relay read the query: %t, but the connection reported encrypted=%t", read, tt.encrypted)
			}
		})
	}
}
