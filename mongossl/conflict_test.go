package mongossl

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// TestConflictTable: every TLS setting of mongo-driver's URI against every
// explicit ssl-mode (and none). An explicit mode refines the driver's
// setting; it is an ErrInvalidOption naming both only where they
// contradict: the driver turns TLS off and the mode encrypts, the driver
// turns TLS on and the mode is DISABLED, the driver turns verification off
// and the mode verifies. No connection is made: ClientOptions only builds
// the options, and core.ResolveDSN is the adapter's own resolver.
func TestConflictTable(t *testing.T) {
	pki := shortPKI(t)
	ca := pki.CA
	const pw = "Conflict-Secret-77"
	only := func(ms ...sslconn.Mode) map[sslconn.Mode]bool {
		s := map[sslconn.Mode]bool{}
		for _, m := range ms {
			s[m] = true
		}
		return s
	}
	natives := []struct {
		name    string
		params  string       // the driver's own TLS options
		mode    sslconn.Mode // what they mean alone; 0: nothing (PREFERRED)
		says    string       // how an error names the setting
		clashes map[sslconn.Mode]bool
	}{
		{"no TLS option", "", 0, "", nil},
		{"tls=false", "tls=false", sslconn.Disabled, "tls=false",
			only(sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity)},
		{"tls=true", "tls=true", sslconn.VerifyIdentity, "tls=true", only(sslconn.Disabled)},
		{"tlsInsecure", "tls=true&tlsInsecure=true", sslconn.Required, "tlsInsecure=true",
			only(sslconn.Disabled, sslconn.VerifyCA, sslconn.VerifyIdentity)},
		{"tlsAllowInvalidCertificates", "tls=true&tlsAllowInvalidCertificates=true", sslconn.Required, "tlsAllowInvalidCertificates=true",
			only(sslconn.Disabled, sslconn.VerifyCA, sslconn.VerifyIdentity)},
		{"tlsAllowInvalidHostnames", "tls=true&tlsAllowInvalidHostnames=true", sslconn.VerifyCA, "tlsAllowInvalidHostnames=true",
			only(sslconn.Disabled)},
		{"tlsCAFile alone", "tlsCAFile=" + ca, sslconn.VerifyIdentity, "tlsCAFile", only(sslconn.Disabled)},
		{"client certificate alone", "tlsCertificateFile=" + pki.Client.Cert + "&tlsPrivateKeyFile=" + pki.Client.Key, sslconn.VerifyIdentity,
			"tlsCertificateFile", only(sslconn.Disabled)},
	}
	for _, n := range natives {
		for _, explicit := range append([]sslconn.Mode{0}, core.Modes...) {
			name := n.name + "/no ssl-mode"
			params := n.params
			if explicit != 0 {
				name = n.name + "/ssl-mode=" + explicit.String()
				params = strings.TrimPrefix(params+"&ssl-mode="+explicit.String(), "&")
			}
			t.Run(name, func(t *testing.T) {
				uri := "mongodb://app:" + pw + "@localhost:27017/?" + params
				co, err := ClientOptions(uri)
				cfg, rerr := core.ResolveDSN("mongo", uri)
				if (err == nil) != (rerr == nil) {
					t.Fatalf("ClientOptions: %v; ResolveDSN: %v", err, rerr)
				}
				if n.clashes[explicit] {
					if err == nil {
						t.Fatalf("no error; resolved %v", cfg.Mode())
					}
					checkConflict(t, err, n.says, explicit, pw)
					checkConflict(t, rerr, n.says, explicit, pw)
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if co == nil || co.Dialer == nil {
					t.Fatal("the options carry no dialer")
				}
				want := explicit
				if want == 0 {
					want = n.mode
				}
				if want == 0 {
					want = sslconn.Preferred
				}
				if got := cfg.Mode(); got != want {
					t.Fatalf("mode %v, want %v", got, want)
				}
			})
		}
	}
}

// checkConflict asserts the conflict error: ErrInvalidOption on ssl-mode,
// naming the driver's setting and the mode, without the password.
func checkConflict(t *testing.T, err error, says string, mode sslconn.Mode, pw string) {
	t.Helper()
	if !errors.Is(err, sslconn.ErrInvalidOption) {
		t.Fatalf("not ErrInvalidOption: %v", err)
	}
	var se *sslconn.Error
	if !errors.As(err, &se) || se.Option != "ssl-mode" {
		t.Fatalf("option %q, want ssl-mode: %v", se.Option, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, says) || !strings.Contains(msg, "ssl-mode="+mode.String()) {
		t.Errorf("%q does not name both %q and ssl-mode=%s", msg, says, mode)
	}
	if strings.Contains(msg, pw) {
		t.Errorf("password in %q", msg)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestUnavailable: a server that refuses every connection ends Connect in
// ErrUnavailable, with the mode, the address, the attempts and the last
// cause, when the retry budget or the caller's context runs out.
func TestUnavailable(t *testing.T) {
	const pw = "Unavailable-Secret-31"
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
			addr := closedPort(t)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				c, err := Connect(ctx, "mongodb://app:"+pw+"@"+addr+"/?"+tt.params, tt.opts...)
				if err == nil {
					_ = c.Disconnect(context.Background())
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Connect to a closed port still running after 20 s")
			}
			if !errors.Is(err, sslconn.ErrUnavailable) {
				t.Fatalf("not ErrUnavailable: %v", err)
			}
			var se *sslconn.Error
			if !errors.As(err, &se) {
				t.Fatalf("not an *sslconn.Error: %v", err)
			}
			if se.Mode != tt.mode {
				t.Errorf("mode %v, want %v", se.Mode, tt.mode)
			}
			if !strings.Contains(se.Host, addr) {
				t.Errorf("host %q does not name %s", se.Host, addr)
			}
			if se.Attempts < 1 {
				t.Errorf("attempts %d", se.Attempts)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("last cause lost: %v", err)
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
