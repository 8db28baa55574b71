package mongov1

import (
	"crypto/tls"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mongotest"
	"github.com/sslconn/sslconn/sslconn"
)

// TestConnectOptionsTLS: v1's options map onto modes as v2's do, bad input
// is ErrInvalidOption without the password, the caller's options are not
// changed, and the revocation check follows the URI (v1's options have no
// field for it). No server.
func TestConnectOptionsTLS(t *testing.T) {
	ca := mongotest.ShortPKI(t).CA
	const pw = "Opts-Secret-pw4"
	base := func(tc *tls.Config) *options.ClientOptions {
		return options.Client().SetHosts([]string{"db.example.com:27017"}).
			SetAuth(options.Credential{Username: "app", Password: pw}).SetTLSConfig(tc)
	}
	fromURI, err := ClientOptions("mongodb://app:" + pw + "@db.example.com/?tls=true")
	if err != nil {
		t.Fatal(err)
	}
	noRevocation, err := ClientOptions("mongodb://app:" + pw + "@db.example.com/?tlsDisableCertificateRevocationCheck=true")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		co         *options.ClientOptions
		opts       []sslconn.Option
		want       sslconn.Mode
		revocation bool
		says       []string
		err        bool
	}{
		{name: "no TLSConfig", co: base(nil), want: sslconn.Preferred, revocation: true},
		{name: "no TLSConfig, a CA", co: base(nil), opts: []sslconn.Option{sslconn.WithCAFile(ca)}, want: sslconn.VerifyCA, revocation: true},
		{name: "TLSConfig", co: base(&tls.Config{ServerName: "db.internal"}), want: sslconn.VerifyIdentity, revocation: true, says: []string{`server-name="db.internal"`}},
		{name: "InsecureSkipVerify", co: base(&tls.Config{InsecureSkipVerify: true}), want: sslconn.Required, revocation: true},
		{name: "from ClientOptions", co: fromURI, want: sslconn.VerifyIdentity, revocation: true},
		{name: "from ClientOptions, more options", co: fromURI, opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)}, want: sslconn.VerifyCA, revocation: true},
		{name: "tlsDisableCertificateRevocationCheck stays", co: noRevocation, want: sslconn.VerifyIdentity},

		{name: "nil", co: nil, err: true, says: []string{"nil"}},
		{name: "InsecureSkipVerify and VERIFY_CA", co: base(&tls.Config{InsecureSkipVerify: true}), opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)},
			err: true, says: []string{"InsecureSkipVerify", "ssl-mode=VERIFY_CA"}},
		{name: "from ClientOptions, tls=true and DISABLED", co: fromURI, opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)},
			err: true, says: []string{"tls=true", "ssl-mode=DISABLED"}},
		{name: "from ClientOptions and a TLSConfig", co: func() *options.ClientOptions {
			c := *fromURI
			return c.SetTLSConfig(&tls.Config{})
		}(), err: true, says: []string{"TLSConfig", "mongov1.ClientOptions"}},
		{name: "the driver rejects the URI", co: options.Client().ApplyURI("mongodb://app:" + pw + "@[::1/?x"), err: true, says: []string{"invalid client options"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *options.ClientOptions
			if tt.co != nil {
				cp := *tt.co
				before = &cp
			}
			c, d, err := fromOptions(tt.co, tt.opts)
			if tt.err {
				matrix.CheckBadInput(t, err, tt.says[0], pw)
				for _, s := range tt.says[1:] {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%v does not name %s", err, s)
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := d.Cfg.Mode(); got != tt.want {
					t.Errorf("mode %v, want %v", got, tt.want)
				}
				if d.Revocation != tt.revocation {
					t.Errorf("revocation check %t, want %t", d.Revocation, tt.revocation)
				}
				for _, s := range tt.says {
					if !strings.Contains(d.Cfg.String(), s) {
						t.Errorf("%s does not say %s", d.Cfg, s)
					}
				}
				if c.TLSConfig != nil || c.Dialer != d {
					t.Error("the copy does not carry the TLS dialer alone")
				}
				if s := d.String(); strings.Contains(s, pw) || !strings.HasPrefix(s, "mongov1.") {
					t.Errorf("the dialer prints %s", s)
				}
			}
			if tt.co != nil && (tt.co.TLSConfig != before.TLSConfig || tt.co.Dialer != before.Dialer) {
				t.Error("the caller's options were changed")
			}
		})
	}
}
