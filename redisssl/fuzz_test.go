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
	for _, s := range []string{
		"redis://:PW@localhost:6379/0",
		"rediss://user:PW@h:6380/1?ssl-mode=VERIFY_CA&ssl-ca=/x.pem&skip_verify=true",
		"redis://:PW@[::1]:6379?addr=[::1]:6380&max_retries=3",
		"rediss://:PW@h?ssl-mode=DISABLED",
		"redis://:PW@h?dial_timeout=3&tls-version=TLSv1.2",
	} {
		f.Add(s, "Fuzz-Secret-9")
	}
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
