package tdsserver

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// TestTLSVersions: inside TDS 7.x PRELOGIN packets the server negotiates
// at most TLS 1.2, as SQL Server does (FreeTDS 1.3 hangs after LOGIN7 when
// it gets TLS 1.3 there), even when MaxVersion allows 1.3; TDS 8 strict
// gets TLS 1.3 with ALPN tds/8.0. OnSession reports what each session
// negotiated.
func TestTLSVersions(t *testing.T) {
	c := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(c.SAN.Cert, c.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	sessions := make(chan SessionInfo, 16)
	s, err := Start(Config{Encrypt: EncryptOff, Cert: &cert, MaxVersion: tls.VersionTLS13, User: "sa", Password: "Pw-123456",
		OnSession: func(si SessionInfo) { sessions <- si }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, tt := range []struct {
		encrypt    string
		version    uint16
		encryption string
		alpn       string
	}{
		{"true", tls.VersionTLS12, "full", ""},
		{"false", tls.VersionTLS12, "login-only", ""},
		{"strict", tls.VersionTLS13, "strict", "tds/8.0"},
	} {
		t.Run("encrypt="+tt.encrypt, func(t *testing.T) {
			conn, err := mssql.NewConnector(fmt.Sprintf("sqlserver://sa:Pw-123456@%s?encrypt=%s&certificate=%s&hostNameInCertificate=localhost", s.Addr(), tt.encrypt, c.ChainPEM))
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var one int
			err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			select {
			case si := <-sessions:
				if si.TLSVersion != tt.version || si.Encryption != tt.encryption || si.ALPN != tt.alpn || !si.LoggedIn || si.Unsupported != 0 {
					t.Fatalf("session %+v, want TLS %#x, encryption %s, ALPN %q", si, tt.version, tt.encryption, tt.alpn)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no session reported")
			}
		})
	}
}

// TestSetOptions: a batch of SET statements, as tedious sends after each
// login, is answered with DONE; anything else in it is not.
func TestSetOptions(t *testing.T) {
	for sql, want := range map[string]bool{
		"set ansi_nulls on\nset textsize 2147483647\nset transaction isolation level read committed\nset xact_abort off": true,
		"SET NOCOUNT ON;":                         true,
		"set textsize 4096 ":                      true,
		"SET FMTONLY ON SELECT 1 SET FMTONLY OFF": false,
		"set nocount on\nselect 1":                false,
		"SELECT 1":                                false,
		"":                                        false,
		"set transaction isolation level snapshot": true,
	} {
		if got := onlySet(sql); got != want {
			t.Errorf("onlySet(%q) = %t, want %t", sql, got, want)
		}
	}
}
