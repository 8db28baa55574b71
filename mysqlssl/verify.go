package mysqlssl

import (
	"context"
	"database/sql"
	"strings"

	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// Verify asks the server for the session's TLS state (Ssl_version and
// Ssl_cipher, as SHOW STATUS LIKE 'Ssl_cipher' does in the guides): the
// server's word, not the client's belief. Cipher is given by its IANA name;
// Mode is the connector's (zero when a wrapper such as otelsql hides the
// connection from database/sql's Raw).
func Verify(ctx context.Context, db *sql.DB) (sslconn.Status, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return sslconn.Status{}, err
	}
	defer conn.Close()
	return verifyConn(ctx, conn)
}

// VerifyConn is Verify for one pinned connection.
func VerifyConn(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	return verifyConn(ctx, conn)
}

func verifyConn(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	st, err := sessionTLS(ctx, conn)
	if err != nil {
		return st, err
	}
	err = conn.Raw(func(dc any) error {
		if w, ok := dc.(*roConn); ok {
			st.Mode = w.c.ssl.Mode()
		}
		return nil
	})
	return st, err
}

func sessionTLS(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	rows, err := conn.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
	if err != nil {
		return sslconn.Status{}, err
	}
	defer rows.Close()
	var st sslconn.Status
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return sslconn.Status{}, err
		}
		switch strings.ToLower(name) {
		case "ssl_version":
			st.Version = value
		case "ssl_cipher":
			st.Cipher = tlsinfo.CipherName(value)
		}
	}
	st.Encrypted = st.Version != ""
	return st, rows.Err()
}
