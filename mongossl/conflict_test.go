package mongossl

import (
	"context"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
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
		// Like the driver, the revocation options turn TLS on, whatever their value.
		{"tlsDisableOCSPEndpointCheck alone", "tlsDisableOCSPEndpointCheck=true", sslconn.VerifyIdentity,
			"tlsDisableOCSPEndpointCheck", only(sslconn.Disabled)},
		{"tlsDisableCertificateRevocationCheck alone", "tlsDisableCertificateRevocationCheck=false", sslconn.VerifyIdentity,
			"tlsDisableCertificateRevocationCheck", only(sslconn.Disabled)},
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
				cfg, rerr := core.ResolveDSN("mongo", uri) //v1:replace "mongo" => "mongov1"
				if (err == nil) != (rerr == nil) {
					t.Fatalf("ClientOptions: %v; ResolveDSN: %v", err, rerr)
				}
				if n.clashes[explicit] {
					if err == nil {
						t.Fatalf("no error; resolved %v", cfg.Config.Mode())
					}
					matrix.CheckConflict(t, err, n.says, explicit, pw)
					matrix.CheckConflict(t, rerr, n.says, explicit, pw)
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
				if got := cfg.Config.Mode(); got != want {
					t.Fatalf("mode %v, want %v", got, want)
				}
			})
		}
	}
}

// TestUnavailable: a server that refuses every connection ends Connect in
// ErrUnavailable, with the mode, the address, the attempts and the last
// cause, when the retry budget or the caller's context runs out. PREFERRED,
// the default, stays out of the URI.
func TestUnavailable(t *testing.T) {
	const pw = "Unavailable-Secret-31"
	matrix.RunUnavailable(t, pw, func(ctx context.Context, addr string, mode sslconn.Mode, opts ...sslconn.Option) error {
		var params string
		if mode != sslconn.Preferred {
			params = "ssl-mode=" + mode.String()
		}
		c, err := Connect(ctx, "mongodb://app:"+pw+"@"+addr+"/?"+params, opts...)
		if err == nil {
			_ = c.Disconnect(context.Background())
		}
		return err
	})
}
