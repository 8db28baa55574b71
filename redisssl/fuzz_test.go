package redisssl

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

// FuzzParseURL: any input gives a client or a typed error, never a panic,
// and the password never shows in the error.
func FuzzParseURL(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseURL.
	f.Fuzz(func(t *testing.T, raw, password string) {
		if len(password) < 8 || strings.ContainsAny(password, "@/?#&=%:[]") {
			return
		}
		raw = strings.Replace(raw, ":PW@", ":"+password+"@", 1)
		for _, fn := range []func(string, ...sslconn.Option) error{
			func(u string, o ...sslconn.Option) error { c, err := NewClient(u, o...); closeIf(c, err); return err },
			func(u string, o ...sslconn.Option) error {
				c, err := NewClusterClient(u, o...)
				closeIf(c, err)
				return err
			},
		} {
			err := fn(raw)
			if err == nil {
				continue
			}
			if !errors.Is(err, sslconn.ErrInvalidOption) && !errors.Is(err, sslconn.ErrBadCA) {
				t.Fatalf("untyped error %v", err)
			}
			// The password is what the URL's userinfo says; the same text
			// elsewhere (a database number, say) is no secret.
			u, perr := url.Parse(raw)
			var pw string
			if perr == nil && u.User != nil {
				pw, _ = u.User.Password()
			}
			if pw == password && strings.Contains(err.Error(), password) {
				t.Fatalf("password in %q", err)
			}
		}
	})
}

func closeIf(c interface{ Close() error }, err error) {
	if err == nil {
		c.Close()
	}
}
