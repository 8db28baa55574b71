package mssqlssl

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync"

	"github.com/sslconn/sslconn/sslconn"
)

// live maps each driver connection (*mssql.Conn) this package made to its
// TLS state, for VerifyConn. It is keyed by the connection itself, not by
// an address, so proxies and NAT do not matter; go-mssqldb does TLS above
// the dialer and exposes neither its net.Conn nor its TLS state.
var live sync.Map // driver.Conn -> sslconn.Status

// register records the TLS state of dc, the driver's connection over s;
// Close forgets it.
func (s *sniffConn) register(dc driver.Conn, st sslconn.Status) {
	s.dc = dc
	live.Store(dc, st)
}

func (s *sniffConn) Close() error {
	s.closed.Store(true)
	if s.dc != nil {
		live.Delete(s.dc)
	}
	return s.Conn.Close()
}

// Verify reports the TLS state of one of db's connections; see VerifyConn.
func Verify(ctx context.Context, db *sql.DB) (sslconn.Status, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return sslconn.Status{}, err
	}
	defer conn.Close()
	return VerifyConn(ctx, conn)
}

// VerifyConn asks the server whether the session is encrypted
// (sys.dm_exec_connections.encrypt_option for @@SPID: the server's word) and
// takes the TLS version and cipher, and the connector's mode, from the
// client's side of the same connection.
func VerifyConn(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	var enc string
	err := conn.QueryRowContext(ctx, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&enc)
	if err != nil {
		return sslconn.Status{}, err
	}
	st := sslconn.Status{Encrypted: strings.EqualFold(enc, "TRUE")}
	err = conn.Raw(func(dc any) error {
		if v, ok := live.Load(dc); ok {
			known := v.(sslconn.Status)
			st.Mode = known.Mode
			if st.Encrypted {
				st.Version, st.Cipher = known.Version, known.Cipher
			}
		}
		return nil
	})
	return st, err
}
