package matrix

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
	"testing"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// BenchModes are the modes the connect benchmarks compare: the ones that
// encrypt whatever the server says.
var BenchModes = []sslconn.Mode{sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity}

// BareTLS is the tls.Config a user writes by hand for mode, for the bare
// driver the benchmarks compare against: InsecureSkipVerify for REQUIRED;
// for VERIFY_CA, which no driver offers, a chain check in VerifyConnection;
// RootCAs and ServerName for VERIFY_IDENTITY. No session cache, as in most
// code. host is the name the server's certificate carries.
func BareTLS(b testing.TB, caFile string, mode sslconn.Mode, host string) *tls.Config {
	b.Helper()
	cas, err := sslconn.ReadCAChain(caFile, "")
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	switch mode {
	case sslconn.Required:
		return &tls.Config{InsecureSkipVerify: true}
	case sslconn.VerifyCA:
		return &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}}
	}
	return &tls.Config{RootCAs: roots, ServerName: host}
}

// BenchConnect opens and closes one connection per iteration.
func BenchConnect(b *testing.B, c driver.Connector) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, err := c.Connect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// BenchQuery runs SELECT 1 on one open connection per iteration.
func BenchQuery(b *testing.B, c driver.Connector) {
	db := sql.OpenDB(c)
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchResume runs loop, a connect benchmark taking the library's options,
// without a session cache and with one shared by every connection, and
// reports how many handshakes per iteration resumed.
func BenchResume(b *testing.B, loop func(b *testing.B, opts ...sslconn.Option)) {
	for _, tt := range []struct {
		name  string
		cache tls.ClientSessionCache
	}{{"cache=none", nil}, {"cache=shared", tls.NewLRUClientSessionCache(0)}} {
		b.Run(tt.name, func(b *testing.B) {
			var resumed atomic.Int64
			loop(b, sslconn.WithSessionCache(tt.cache), core.WithObserver(func(_ string, cs tls.ConnectionState) {
				if cs.DidResume {
					resumed.Add(1)
				}
			}))
			b.ReportMetric(float64(resumed.Load())/float64(b.N), "resumed/op")
		})
	}
}

// BenchConnectPlaintext runs the PREFERRED-against-plaintext rows of a
// database/sql engine: first/impl=..., a new connector's first connection
// (the library's connector has learnt nothing yet), and later/impl=..., a
// new connection of a connector that has connected before.
func BenchConnectPlaintext(b *testing.B, connectors map[string]func(*testing.B) driver.Connector) {
	for _, impl := range []string{"bare", "sslconn"} {
		b.Run("first/impl="+impl, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				conn, err := connectors[impl](b).Connect(ctx)
				if err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
		b.Run("later/impl="+impl, func(b *testing.B) {
			c := connectors[impl](b)
			conn, err := c.Connect(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			conn.Close()
			BenchConnect(b, c)
		})
	}
}
