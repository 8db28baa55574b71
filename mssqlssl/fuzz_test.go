package mssqlssl

import (
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
)

// FuzzParseDSN: any input gives a connector or a typed error, never a
// panic, and the password never shows in the error.
func FuzzParseDSN(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseDSN.
	f.Fuzz(func(t *testing.T, dsn, password string) {
		if len(password) < 8 || strings.ContainsAny(password, "@/?#&=%:;{}[], ") {
			return
		}
		dsn = strings.ReplaceAll(dsn, "PW", password)
		_, err := NewConnector(dsn)
		if err == nil {
			return
		}
		if dsnPassword(dsn) == password {
			matrix.CheckBadInput(t, err, "", password)
		} else {
			matrix.CheckBadInput(t, err, "", "")
		}
	})
}
