package mysqlssl

import (
	"errors"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

// FuzzParseDSN: any input gives a connector or a typed error, never a panic,
// and the password never shows in the error.
func FuzzParseDSN(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseDSN.
	f.Fuzz(func(t *testing.T, dsn, password string) {
		if len(password) < 8 || strings.ContainsAny(password, "@/?&=()%:") {
			return
		}
		dsn = strings.Replace(dsn, ":p@", ":"+password+"@", 1)
		_, err := NewConnector(dsn)
		if err == nil {
			return
		}
		if !errors.Is(err, sslconn.ErrInvalidOption) && !errors.Is(err, sslconn.ErrBadCA) {
			t.Fatalf("untyped error %v", err)
		}
		// The password is the one the DSN's user part holds, as the
		// connector reads it; the same text elsewhere is no secret.
		// That is from the first ':' to the last '@'.
		at := strings.LastIndexByte(dsn, '@')
		if at < 0 {
			return
		}
		if _, pw, _ := strings.Cut(dsn[:at], ":"); pw == password && strings.Contains(err.Error(), password) {
			t.Fatalf("password in %q", err)
		}
	})
}
