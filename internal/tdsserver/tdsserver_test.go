package tdsserver

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"os"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
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
