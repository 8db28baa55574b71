package tdsserver

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// TestConnectionsWhere: sys.dm_exec_connections is answered as SQL Server
// answers a login with VIEW SERVER STATE: WHERE session_id = @@SPID gives
// the session's own row, no WHERE gives every connected session's, in
// session_id order; a WHERE the server cannot apply, an unknown column and
// statements it does not know whole are errors, never answered as if
// understood.
func TestConnectionsWhere(t *testing.T) {
	c := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(c.SAN.Cert, c.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Config{Encrypt: EncryptOff, Cert: &cert, User: "sa", Password: "Pw-123456"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := func(encrypt string) *sql.Conn {
		cn, err := mssql.NewConnector("sqlserver://sa:Pw-123456@" + s.Addr() + "?encrypt=" + encrypt + "&TrustServerCertificate=true")
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(cn)
		t.Cleanup(func() { db.Close() })
		sc, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sc.Close() })
		return sc
	}
	plain := conn("disable") // the older session: the first row without WHERE
	enc := conn("true")
	var spid int
	if err := enc.QueryRowContext(ctx, "select @@spid").Scan(&spid); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := enc.QueryRowContext(ctx, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&got); err != nil || got != "TRUE" {
		t.Fatalf("own row: %q %v, want TRUE", got, err)
	}
	if err := plain.QueryRowContext(ctx, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&got); err != nil || got != "FALSE" {
		t.Fatalf("own row, plaintext session: %q %v, want FALSE", got, err)
	}
	if err := plain.QueryRowContext(ctx, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = "+strconv.Itoa(spid)).Scan(&got); err != nil || got != "TRUE" {
		t.Fatalf("another session's row by its ID: %q %v, want TRUE", got, err)
	}
	rows, err := enc.QueryContext(ctx, "select session_id, encrypt_option from sys.dm_exec_connections")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for rows.Next() {
		var id int
		var e string
		if err := rows.Scan(&id, &e); err != nil {
			t.Fatal(err)
		}
		all = append(all, strconv.Itoa(id)+":"+e)
	}
	rows.Close()
	if len(all) != 2 || !strings.HasSuffix(all[0], ":FALSE") || all[1] != strconv.Itoa(spid)+":TRUE" {
		t.Fatalf("without WHERE: %v, want both sessions, the plaintext one first", all)
	}
	for _, q := range []string{
		"SELECT encrypt_option FROM sys.dm_exec_connections WHERE client_tcp_port = 1",
		"SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID OR 1 = 1",
		"SELECT nonsense FROM sys.dm_exec_connections WHERE session_id = @@SPID",
		"SELECT 1, @@VERSION",
		"SELECT 1; SELECT 2",
		"SELECT @@SPIDX",
	} {
		var v any
		err := enc.QueryRowContext(ctx, q).Scan(&v)
		var me mssql.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: %v (%v), want a server error", q, v, err)
		}
	}
	if err := enc.QueryRowContext(ctx, "/* c */ select 1 -- marker").Scan(&got); err != nil || got != "1" {
		t.Errorf("comments: %q %v", got, err)
	}
}

// TestFraming: a client message framed as SQL Server would refuse it ends
// the session before any answer: packets of one message with IDs that
// skip, a packet of another type inside a message, undefined status bits,
// a length over the packet size, a first message that is not PRELOGIN.
func TestFraming(t *testing.T) {
	ended := make(chan error, 1)
	s, err := Start(Config{Encrypt: EncryptNotSup, User: "sa", Password: "Pw-123456", OnSession: func(si SessionInfo) { ended <- si.Err }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	prelogin := []byte{0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF, 16, 0, 0, 0, 0, 0, EncryptNotSup}
	packet := func(typ, status byte, id byte, body []byte) []byte {
		h := []byte{typ, status, 0, 0, 0, 0, id, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(8+len(body)))
		return append(h, body...)
	}
	split := func(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }
	for _, tt := range []struct {
		name, want string
		wire       []byte
	}{
		{"well framed, two packets", "", split(packet(0x12, 0, 1, prelogin[:7]), packet(0x12, 1, 2, prelogin[7:]))},
		{"packet ID skips", "packet ID", split(packet(0x12, 0, 1, prelogin[:7]), packet(0x12, 1, 3, prelogin[7:]))},
		{"another type inside", "inside a message", split(packet(0x12, 0, 1, prelogin[:7]), packet(0x10, 1, 2, prelogin[7:]))},
		{"undefined status bit", "undefined bits", packet(0x12, 0x05, 1, prelogin)},
		{"reset on PRELOGIN", "RESETCONNECTION", packet(0x12, 0x09, 1, prelogin)},
		{"too long", "packet length", packet(0x12, 1, 1, make([]byte, maxPacket))},
		{"SQL batch first", "expected PRELOGIN", packet(0x01, 1, 1, prelogin)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(tt.wire); err != nil {
				t.Fatal(err)
			}
			_, answer, err := ReadMessage(c)
			if tt.want == "" {
				if err != nil || preloginOption(answer, 0x01) != EncryptNotSup {
					t.Fatalf("no PRELOGIN answer: %v", err)
				}
				c.Close()
				<-ended
				return
			}
			if err == nil {
				t.Fatalf("answered: want the connection closed for %q", tt.want)
			}
			if serr := <-ended; serr == nil || !strings.Contains(serr.Error(), tt.want) {
				t.Fatalf("the session ended with %v, want %q", serr, tt.want)
			}
		})
	}
}
