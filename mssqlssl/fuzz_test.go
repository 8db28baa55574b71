package mssqlssl

import (
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/matrix"
)

// FuzzParseDSN: any input gives a connector or a typed error, never a
// panic, and the password never shows in the error.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"sqlserver://sa:PW@localhost:1433?database=db&ssl-mode=VERIFY_CA",
		"server=h;user id=sa;password=PW;encrypt=strict;ssl-mode=REQUIRED",
		"odbc:server=h;user id=sa;password={PW};encrypt=disable",
		"sqlserver://sa:PW@h/inst?encrypt=true&TrustServerCertificate=true&tlsmin=1.0",
	} {
		f.Add(s, "Fuzz-Secret-9")
	}
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
