package matrix

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// ClosedAddr returns a loopback address ("127.0.0.1:port") nothing listens
// on: a port that was listened on a moment ago and closed.
func ClosedAddr(t testing.TB) string {
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

// unavailableMargin is how long after the retry budget or the caller's
// deadline ran out the error may come: the attempt under way is cut short
// by the same deadline, and a refused connect on loopback takes
// microseconds, so this is scheduling, with room for a machine twice as
// slow under the race detector.
const unavailableMargin = 500 * time.Millisecond

// RunUnavailable asserts the contract for a server that refuses every
// connection: once the retry budget (REQUIRED, a 1.5 s budget, no deadline)
// or the caller's deadline (PREFERRED, the default budget, a 1 s deadline)
// runs out, the first operation ends in ErrUnavailable, an *sslconn.Error
// naming the mode and the address, counting the attempts and keeping the
// last cause (connection refused, and the deadline when it was the
// caller's), without the password, and no later than unavailableMargin
// after the budget or deadline ran out.
//
// connect builds the adapter's DSN for addr with password and mode, opens
// it with opts and performs its first operation (Ping, Connect, ...) on ctx.
func RunUnavailable(t *testing.T, password string, connect func(ctx context.Context, addr string, mode sslconn.Mode, opts ...sslconn.Option) error) {
	tests := []struct {
		name     string
		mode     sslconn.Mode
		opts     []sslconn.Option
		deadline time.Duration // 0: none
		limit    time.Duration // the budget or the deadline, whichever ends it
	}{
		{"retry budget", sslconn.Required, []sslconn.Option{sslconn.WithRetryBudget(1500 * time.Millisecond)}, 0, 1500 * time.Millisecond},
		{"context deadline", sslconn.Preferred, nil, time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := ClosedAddr(t)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- connect(ctx, addr, tt.mode, tt.opts...) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("still connecting to a closed port (%s) after 20 s", addr)
			}
			took := time.Since(start)
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if took > tt.limit+unavailableMargin {
				t.Errorf("the error came %v after the first attempt, want within %v (the %s) + %v",
					took.Round(time.Millisecond), tt.limit, tt.name, unavailableMargin)
			}
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
			if !strings.Contains(e.Host, addr) {
				t.Errorf("Host = %q, want the address %s", e.Host, addr)
			}
			if e.Attempts < 1 {
				t.Errorf("Attempts = %d, want >= 1", e.Attempts)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("the last cause is lost: %v", err)
			}
			if tt.deadline > 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("does not match context.DeadlineExceeded: %v", err)
			}
			if password != "" && strings.Contains(err.Error(), password) {
				t.Errorf("password in %q", err)
			}
		})
	}
}

// CheckConflict asserts the error of a native TLS setting that contradicts
// an explicit mode: ErrInvalidOption, an *sslconn.Error on option
// ssl-mode, naming the driver's setting and ssl-mode=MODE, without the
// password.
func CheckConflict(t testing.TB, err error, setting string, mode sslconn.Mode, password string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a conflict between %s and ssl-mode=%s", setting, mode)
	}
	if !errors.Is(err, sslconn.ErrInvalidOption) {
		t.Fatalf("%v, want ErrInvalidOption", err)
	}
	var e *sslconn.Error
	if !errors.As(err, &e) || e.Option != "ssl-mode" {
		t.Fatalf("%v (%#v), want an *sslconn.Error on option ssl-mode", err, e)
	}
	msg := err.Error()
	for _, s := range []string{setting, "ssl-mode=" + mode.String()} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not name %q", msg, s)
		}
	}
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("password in %q", msg)
	}
}

// CheckStatus asserts what Verify (or the like, named by what) reports: an
// encrypted connection has a TLS version ("TLSv1.x") and an IANA cipher
// name ("TLS_..."); a plaintext one has neither.
func CheckStatus(t testing.TB, what string, st sslconn.Status, encrypted bool) {
	t.Helper()
	if st.Encrypted != encrypted {
		t.Fatalf("%s: %+v, want encrypted=%t", what, st, encrypted)
	}
	if encrypted && (!strings.HasPrefix(st.Version, "TLSv1.") || !strings.HasPrefix(st.Cipher, "TLS_")) {
		t.Fatalf("%s: encrypted status %+v lacks a TLS version or cipher", what, st)
	}
	if !encrypted && (st.Version != "" || st.Cipher != "") {
		t.Fatalf("%s: plaintext status %+v names a version or cipher", what, st)
	}
}

// CheckMode asserts that a Status carries the mode the client applies
// (#29): want is the mode its DSN and options resolved to.
func CheckMode(t testing.TB, what string, st sslconn.Status, want sslconn.Mode) {
	t.Helper()
	if st.Mode != want {
		t.Errorf("%s: %+v, want mode %s", what, st, want)
	}
}

// ParamsMode is the mode a DSN's parameters resolve to, with no driver
// setting: ssl-mode's, else VERIFY_CA with ssl-ca, else PREFERRED.
func ParamsMode(params string) sslconn.Mode {
	q, _ := url.ParseQuery(params)
	if m, err := sslconn.ParseMode(q.Get("ssl-mode")); err == nil {
		return m
	}
	if q.Get("ssl-ca") != "" {
		return sslconn.VerifyCA
	}
	return sslconn.Preferred
}
