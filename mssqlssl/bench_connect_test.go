package mssqlssl

import (
	"crypto/tls"
	"database/sql/driver"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/sslconn"
)

// The benchmarks compare the library with bare go-mssqldb configured by
// hand for the same mode, in one run; sub-benchmarks are named impl=bare and
// impl=sslconn so that benchstat -col /impl prints the ratio
// (scripts/bench.sh). The server is the in-process TDS stand-in, which
// issues no session tickets (nor does SQL Server): no resumption here.

func bareConnector(b *testing.B, tc *tls.Config) driver.Connector {
	cfg, err := msdsn.Parse(urlDSN(scenarios.Get(b).servers[1], "localhost", "encrypt=true"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.TLSConfig = tc
	return mssql.NewConnectorConfig(cfg)
}

func libConnector(b *testing.B, mode sslconn.Mode) driver.Connector {
	env := scenarios.Get(b)
	c, err := NewConnector(urlDSN(env.servers[1], "localhost", "ssl-mode="+mode.String()+"&ssl-ca="+env.certs.CA))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkConnect: one new connection, PRELOGIN, TLS handshake and LOGIN7
// included, per mode; floor is a TDS 8 (TLS-first) crypto/tls handshake alone.
//
//	go test -run '^$' -bench Connect -benchmem ./mssqlssl
func BenchmarkConnect(b *testing.B) {
	env := scenarios.Get(b)
	certs, servers := env.certs, env.servers
	for _, mode := range matrix.BenchModes {
		b.Run(mode.String()+"/impl=bare", func(b *testing.B) {
			matrix.BenchConnect(b, bareConnector(b, matrix.BareTLS(b, certs.CA, mode, "localhost")))
		})
		b.Run(mode.String()+"/impl=sslconn", func(b *testing.B) { matrix.BenchConnect(b, libConnector(b, mode)) })
	}
	// The floor: the TLS handshake alone, with crypto/tls (last, so that
	// benchstat compares it with the bare driver).
	b.Run("REQUIRED/impl=tls-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", servers[1].Addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"tds/8.0"}})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkQuery: SELECT 1 on one open TLS connection, library against the
// bare driver: the library must add nothing per operation.
func BenchmarkQuery(b *testing.B) {
	certs := scenarios.Get(b).certs
	b.Run("impl=bare", func(b *testing.B) {
		matrix.BenchQuery(b, bareConnector(b, matrix.BareTLS(b, certs.CA, sslconn.VerifyIdentity, "localhost")))
	})
	b.Run("impl=sslconn", func(b *testing.B) { matrix.BenchQuery(b, libConnector(b, sslconn.VerifyIdentity)) })
}

// BenchmarkConnectPlaintext: PREFERRED, the default, against a server that
// answers PRELOGIN with ENCRYPT_NOT_SUP, next to bare go-mssqldb with
// encrypt=disable.
//
//	go test -run '^$' -bench ConnectPlaintext ./mssqlssl
func BenchmarkConnectPlaintext(b *testing.B) {
	s := scenarios.Get(b).servers[0]
	matrix.BenchConnectPlaintext(b, map[string]func(*testing.B) driver.Connector{
		"bare": func(b *testing.B) driver.Connector {
			cfg, err := msdsn.Parse(urlDSN(s, "localhost", "encrypt=disable"))
			if err != nil {
				b.Fatal(err)
			}
			return mssql.NewConnectorConfig(cfg)
		},
		"sslconn": func(b *testing.B) driver.Connector {
			c, err := NewConnector(urlDSN(s, "localhost", "ssl-mode=PREFERRED"))
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	})
}
