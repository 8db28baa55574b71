package mysqlssl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// TestConflictTable: every tls= value of go-sql-driver/mysql against every
// ssl-mode (and none), through NewConnector alone: an explicit mode refines
// tls= and wins; it is an ErrInvalidOption on ssl-mode naming both only
// when they contradict (tls= off and the mode encrypts, tls= on and the mode
// is DISABLED, tls=skip-verify and the mode verifies).
func TestConflictTable(t *testing.T) {
	const (
		pw = "Conflict-Secret-pw3"
		D  = sslconn.Disabled
		P  = sslconn.Preferred
		R  = sslconn.Required
		CA = sslconn.VerifyCA
		ID = sslconn.VerifyIdentity
		X  = sslconn.Mode(0) // ErrInvalidOption
	)
	// The columns: no ssl-mode, then core.Modes (DISABLED ... VERIFY_IDENTITY).
	tests := []struct {
		tls  string // "" leaves tls= out
		want [6]sslconn.Mode
	}{
		{"", [6]sslconn.Mode{P, D, P, R, CA, ID}},
		{"false", [6]sslconn.Mode{D, D, X, X, X, X}},
		{"0", [6]sslconn.Mode{D, D, X, X, X, X}},
		{"preferred", [6]sslconn.Mode{P, D, P, R, CA, ID}},
		{"skip-verify", [6]sslconn.Mode{R, X, P, R, X, X}},
		{"true", [6]sslconn.Mode{ID, X, P, R, CA, ID}},
		{"1", [6]sslconn.Mode{ID, X, P, R, CA, ID}},
	}
	if len(core.Modes) != 5 {
		t.Fatalf("core.Modes = %v: the table has a column per mode", core.Modes)
	}
	for _, tt := range tests {
		for col, want := range tt.want {
			var params []string
			if tt.tls != "" {
				params = append(params, "tls="+tt.tls)
			}
			explicit := sslconn.Mode(0)
			if col > 0 {
				explicit = core.Modes[col-1]
				params = append(params, "ssl-mode="+explicit.String())
			}
			name := "tls=" + tt.tls + "/ssl-mode=" + explicit.String()
			t.Run(name, func(t *testing.T) {
				d := "app:" + pw + "@tcp(127.0.0.1:3306)/db?" + strings.Join(params, "&")
				c, err := NewConnector(d)
				if want != X {
					if err != nil {
						t.Fatalf("%s: %v, want mode %s", d, err, want)
					}
					if got := c.Config().Mode(); got != want {
						t.Fatalf("%s: mode %s, want %s", d, got, want)
					}
					return
				}
				matrix.CheckConflict(t, err, "tls="+tt.tls, explicit, pw)
			})
		}
	}
}

// TestUnavailable: a server that never answers ends in ErrUnavailable with
// the mode, the address, the attempts and the refused connection kept,
// whether the retry budget or the caller's deadline ran out. PREFERRED, the
// default, stays out of the DSN.
func TestUnavailable(t *testing.T) {
	const pw = "Unavail-Secret-pw7"
	matrix.RunUnavailable(t, pw, func(ctx context.Context, addr string, mode sslconn.Mode, opts ...sslconn.Option) error {
		var params string
		if mode != sslconn.Preferred {
			params = "ssl-mode=" + mode.String()
		}
		db, err := Open("app:"+pw+"@tcp("+addr+")/db?"+params, opts...)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
}

// TestVerifyThroughProxy: Verify and VerifyConn find the state of the
// connection that carried their query through a TCP relay, where the
// address the client dialed is not the server's: the server's own
// Ssl_version, confirmed by what the relay could read.
func TestVerifyThroughProxy(t *testing.T) {
	env := scenarios.Get(t)
	tests := []struct {
		name      string
		scenario  int
		params    string
		encrypted bool
	}{
		{"VERIFY_IDENTITY", 1, "ssl-mode=VERIFY_IDENTITY&ssl-ca=" + env.certs.CA, true},
		{"REQUIRED", 1, "ssl-mode=REQUIRED", true},
		{"DISABLED", 1, "ssl-mode=DISABLED", false},
		{"PREFERRED without TLS", 0, "ssl-mode=PREFERRED", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mitm.Start(mitm.Config{Engine: mitm.MySQL, Attack: mitm.Relay, Upstream: testenv.Addr(env.servers[tt.scenario].Port)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			db, err := Open(appDSNAt(p.Addr(), tt.params), sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			check := func(what string, st sslconn.Status, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				matrix.CheckStatus(t, what, st, tt.encrypted)
				matrix.CheckMode(t, what, st, matrix.ParamsMode(tt.params))
			}
			st, err := Verify(ctx, db)
			check("Verify", st, err)
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st, err = VerifyConn(ctx, conn)
			check("VerifyConn", st, err)
			conn.Close()
			// The relay agrees: it read the query only in plaintext.
			if read := strings.Contains(string(p.Seen()), "Ssl_version"); read == tt.encrypted {
				t.Fatalf("the relay read the query: %t, but the connection reported encrypted=%t", read, tt.encrypted)
			}
		})
	}
}
