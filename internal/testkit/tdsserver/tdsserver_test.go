package tdsserver

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

// TestBareDriver: the unmodified go-mssqldb driver against each ENCRYPT
// answer, with each of its own encrypt settings ([MS-TDS] 2.2.6.5's table).
func TestBareDriver(t *testing.T) {
	c := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(c.SAN.Cert, c.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	want := map[byte]map[string]string{
		EncryptNotSup: {"disable": "FALSE", "false": "FALSE", "true": "error", "strict": "error"},
		EncryptOff:    {"disable": "FALSE", "false": "FALSE", "true": "TRUE", "strict": "TRUE"},
		EncryptReq:    {"disable": "error", "false": "TRUE", "true": "TRUE", "strict": "TRUE"},
	}
	for enc, row := range want {
		conf := Config{Encrypt: enc, User: "sa", Password: "Pw-123456"}
		if enc != EncryptNotSup {
			conf.Cert = &cert
		}
		s, err := Start(conf)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		for e, w := range row {
			t.Run(fmt.Sprintf("server-%d/encrypt=%s", enc, e), func(t *testing.T) {
				dsn := fmt.Sprintf("sqlserver://sa:Pw-123456@%s?encrypt=%s&TrustServerCertificate=true&certificate=%s&hostNameInCertificate=localhost", s.Addr(), e, c.ChainPEM)
				conn, err := mssql.NewConnector(dsn)
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(conn)
				defer db.Close()
				var got, host string
				var port int
				err = db.QueryRowContext(context.Background(), "SELECT encrypt_option, client_net_address, client_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&got, &host, &port)
				if err != nil {
					got = "error"
				}
				if got != w {
					t.Fatalf("encrypt_option %q (%v), want %s", got, err, w)
				}
			})
		}
	}
}

// TestFedAuthToken: the unmodified driver's access token connector (the
// FEDAUTH feature extension, security token library) logs in with the
// configured token, encrypted, and not with another; SetToken rotates it.
func TestFedAuthToken(t *testing.T) {
	c := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(c.SAN.Cert, c.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{Encrypt: EncryptOff, Cert: &cert, User: "sa", Password: "Pw-123456", Token: "Token-A-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var token atomic.Value
	conn, err := mssql.NewAccessTokenConnector(
		fmt.Sprintf("sqlserver://%s?encrypt=true&certificate=%s&hostNameInCertificate=localhost", s.Addr(), c.ChainPEM),
		func() (string, error) { return token.Load().(string), nil })
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxIdleConns(0)
	ping := func() (string, error) {
		var enc string
		err := db.QueryRowContext(context.Background(), "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&enc)
		return enc, err
	}
	token.Store("Token-A-1")
	if enc, err := ping(); err != nil || enc != "TRUE" {
		t.Fatalf("right token: %q %v", enc, err)
	}
	token.Store("Token-wrong")
	if _, err := ping(); err == nil || !strings.Contains(err.Error(), "token-identified principal") {
		t.Fatalf("wrong token: %v", err)
	}
	s.SetToken("Token-B-2")
	token.Store("Token-B-2")
	if _, err := ping(); err != nil {
		t.Fatalf("rotated token: %v", err)
	}
	// A password login still works beside it.
	pw, err := mssql.NewConnector(fmt.Sprintf("sqlserver://sa:Pw-123456@%s?encrypt=true&TrustServerCertificate=true", s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	pdb := sql.OpenDB(pw)
	defer pdb.Close()
	if err := pdb.Ping(); err != nil {
		t.Fatalf("password login: %v", err)
	}
}
