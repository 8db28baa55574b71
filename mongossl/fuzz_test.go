package mongossl

import (
	"errors"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

// FuzzClientOptions: any input gives options or a typed error, never a
// panic, and the password never shows in the error.
func FuzzClientOptions(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzClientOptions.
	f.Fuzz(func(t *testing.T, raw, password string) {
		if len(password) < 8 || strings.ContainsAny(password, "@/?#&=%:[],;") {
			return
		}
		raw = strings.Replace(raw, ":PW@", ":"+password+"@", 1)
		if strings.HasPrefix(raw, "mongodb+srv://") {
			return // would look up DNS
		}
		_, err := ClientOptions(raw)
		if err == nil {
			return
		}
		if !errors.Is(err, sslconn.ErrInvalidOption) && !errors.Is(err, sslconn.ErrBadCA) {
			t.Fatalf("untyped error %v", err)
		}
		u, perr := splitURI(raw)
		if perr == nil && u.password() == password && strings.Contains(err.Error(), password) {
			t.Fatalf("password in %q", err)
		}
	})
}
