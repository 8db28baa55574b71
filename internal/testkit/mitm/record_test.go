package mitm

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

// TestRelayRecordsWire: a passive relay records every byte the client
// sends, whatever the session encrypts. The unmodified go-mssqldb through
// the relay to the TDS test server with TLS optional: encrypt=disable
// sends login and queries in plaintext; encrypt=false encrypts only the
// LOGIN7 packet (the server's encrypt_option says FALSE), so the password
// is hidden and the query after the login is on the wire, where the
// proxy's record shows it; encrypt=true hides both.
func TestRelayRecordsWire(t *testing.T) {
	const user, password = "sa", "Login-Secret-4411"
	c := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(c.SAN.Cert, c.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sessions []tdsserver.SessionInfo
	s, err := tdsserver.Start(tdsserver.Config{Encrypt: tdsserver.EncryptOff, Cert: &cert, User: user, Password: password,
		OnSession: func(si tdsserver.SessionInfo) { mu.Lock(); sessions = append(sessions, si); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	p, err := Start(Config{Engine: TDS, Attack: Relay, Upstream: s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tt := range []struct {
		encrypt, encryption string
		marker, password    bool // want on the wire
	}{
		{"disable", "none", true, true},
		{"false", "login-only", true, false},
		{"true", "full", false, false},
	} {
		t.Run("encrypt="+tt.encrypt, func(t *testing.T) {
			p.Reset()
			mu.Lock()
			sessions = nil
			mu.Unlock()
			marker := "marker-encrypt-" + tt.encrypt
			conn, err := mssql.NewConnector("sqlserver://" + user + ":" + password + "@" + p.Addr() + "?encrypt=" + tt.encrypt +
				"&TrustServerCertificate=true")
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var n int
			err = db.QueryRowContext(ctx, "SELECT 1 -- "+marker).Scan(&n)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			wire := p.Wire()
			if got := bytes.Contains(wire, tdsserver.UCS2(marker)); got != tt.marker {
				t.Errorf("the query after the login on the wire: %t, want %t", got, tt.marker)
			}
			if got := bytes.Contains(wire, tdsserver.LoginPassword(password)); got != tt.password {
				t.Errorf("the password on the wire: %t, want %t", got, tt.password)
			}
			if p.Dropped() != 0 {
				t.Errorf("dropped %d bytes", p.Dropped())
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				n := len(sessions)
				var got string
				if n > 0 {
					got = sessions[0].Encryption
				}
				mu.Unlock()
				if n > 0 {
					if got != tt.encryption {
						t.Errorf("the server saw encryption %q, want %q", got, tt.encryption)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the session did not end")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
