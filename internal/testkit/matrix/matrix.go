// Package matrix holds what the adapters' matrix tests share: the
// contract's table of outcomes and the checks every cell makes. Test code only.
package matrix

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// Outcomes of a matrix cell: connected in plaintext, connected over TLS, or
// the text of the sentinel error (see Kind).
const (
	Plain = "plain"
	TLSOK = "TLS"
)

// Sentinels are the errors a cell may end in.
var Sentinels = []error{sslconn.ErrServerNoTLS, sslconn.ErrServerRequiresTLS, sslconn.ErrUnknownAuthority,
	sslconn.ErrHostnameMismatch, sslconn.ErrCertExpired, sslconn.ErrTLSVersion, sslconn.ErrClientCertRequired}

// Kind names the sentinel err matches, or "unclassified".
func Kind(err error) string {
	for _, k := range Sentinels {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "unclassified"
}

// Want is the contract's table: the outcome of every mode in S0-S7.
func Want() [8]map[sslconn.Mode]string {
	var (
		noTLS    = sslconn.ErrServerNoTLS.Error()
		reqTLS   = sslconn.ErrServerRequiresTLS.Error()
		unknown  = sslconn.ErrUnknownAuthority.Error()
		mismatch = sslconn.ErrHostnameMismatch.Error()
		expired  = sslconn.ErrCertExpired.Error()
		version  = sslconn.ErrTLSVersion.Error()
	)
	row := func(d, p, r, ca, id string) map[sslconn.Mode]string {
		return map[sslconn.Mode]string{sslconn.Disabled: d, sslconn.Preferred: p, sslconn.Required: r, sslconn.VerifyCA: ca, sslconn.VerifyIdentity: id}
	}
	return [8]map[sslconn.Mode]string{
		row(Plain, Plain, noTLS, noTLS, noTLS),
		row(Plain, TLSOK, TLSOK, TLSOK, TLSOK),
		row(reqTLS, TLSOK, TLSOK, TLSOK, TLSOK),
		row(Plain, TLSOK, TLSOK, TLSOK, mismatch),
		row(Plain, TLSOK, TLSOK, unknown, unknown),
		row(Plain, TLSOK, TLSOK, TLSOK, TLSOK),
		row(Plain, TLSOK, TLSOK, expired, expired),
		row(Plain, version, version, version, version),
	}
}

// PortFor maps a scenario and mode onto a port for engines that keep
// plaintext and TLS on separate ports (Redis, FerretDB): DISABLED uses the
// plaintext port (the non-SSL endpoint), or the TLS port where the server
// has no other (S2, TLS forced); the modes that encrypt use the TLS port, or
// the plaintext port of S0, the server without TLS.
func PortFor(scenario int, s *testenv.Server, mode sslconn.Mode) int {
	switch {
	case scenario == 0:
		return s.Port
	case mode == sslconn.Disabled && scenario != 2:
		return s.Port
	default:
		return s.TLSPort
	}
}

// CheckErrorText asserts what every error owes its reader: an
// *sslconn.Error naming the mode, the host and an option, without the password.
func CheckErrorText(t testing.TB, err error, mode sslconn.Mode, host, password string) {
	t.Helper()
	msg := err.Error()
	var e *sslconn.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *sslconn.Error: %v", err)
	}
	for _, s := range []string{mode.String(), host, e.Option} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not name %q", msg, s)
		}
	}
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("password in %q", msg)
	}
}

// StartScenarios starts one server per scenario S0-S7, in parallel.
func StartScenarios(c *testenv.Certs, start func(testenv.TLS) (*testenv.Server, error)) ([8]*testenv.Server, error) {
	var (
		servers [8]*testenv.Server
		errs    [8]error
		wg      sync.WaitGroup
	)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = start(testenv.Scenario(c, i))
		}()
	}
	wg.Wait()
	return servers, errors.Join(errs[:]...)
}

// CheckBadInput asserts that a DSN, URL or option error is typed
// (ErrInvalidOption or ErrBadCA), says what it should, and hides the password.
func CheckBadInput(t testing.TB, err error, says, password string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, sslconn.ErrInvalidOption) && !errors.Is(err, sslconn.ErrBadCA) {
		t.Fatalf("untyped error: %v", err)
	}
	if !strings.Contains(err.Error(), says) {
		t.Errorf("%q does not say %q", err, says)
	}
	if password != "" && strings.Contains(err.Error(), password) {
		t.Errorf("password in %q", err)
	}
}

// CAFiles names the CA in every form the console's download takes.
func CAFiles(c *testenv.Certs) map[string]string {
	return map[string]string{"PEM": c.ChainPEM, "DER": c.CADER, "JKS": c.JKS, "P7B": c.P7B, "P7B-DER": c.P7BDER, "zip": c.Zip}
}
