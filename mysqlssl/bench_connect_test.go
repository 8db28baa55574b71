package mysqlssl

import (
	"crypto/tls"
	"database/sql/driver"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The benchmarks compare the library with the bare driver configured by
// hand for the same mode, in one run; sub-benchmarks are named impl=bare and
// impl=sslconn so that benchstat -col /impl prints the ratio (scripts/bench.sh).

func bareConnector(b *testing.B, port int, tc *tls.Config) driver.Connector {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = testenv.MySQLUser, testenv.MySQLPassword, "tcp", hostPort(port), testenv.MySQLDatabase
	cfg.TLS = tc
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func hostPort(port int) string { return net.JoinHostPort("localhost", strconv.Itoa(port)) }

func libConnector(b *testing.B, port int, ca string, mode sslconn.Mode, opts ...sslconn.Option) driver.Connector {
	c, err := NewConnector(dsn(testenv.MySQLUser, testenv.MySQLPassword, "localhost", port, "ssl-mode="+mode.String()+"&ssl-ca="+ca), opts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkConnect: one new connection, TLS handshake and login included,
// per mode; floor is the TCP connect, greeting, SSLRequest and TLS
// handshake alone, with crypto/tls.
//
//	go test -run '^$' -bench Connect -benchmem ./mysqlssl
func BenchmarkConnect(b *testing.B) {
	env := scenarios.Get(b)
	certs, port := env.certs, env.servers[1].Port
	for _, mode := range matrix.BenchModes {
		b.Run(mode.String()+"/impl=bare", func(b *testing.B) {
			matrix.BenchConnect(b, bareConnector(b, port, matrix.BareTLS(b, certs.CA, mode, "localhost")))
		})
		// As shipped: reconnects resume TLS sessions where the server allows.
		b.Run(mode.String()+"/impl=sslconn", func(b *testing.B) {
			matrix.BenchConnect(b, libConnector(b, port, certs.CA, mode))
		})
		// Resumption off, like the bare driver: the like-for-like cost.
		b.Run(mode.String()+"/impl=sslconn-noresume", func(b *testing.B) {
			matrix.BenchConnect(b, libConnector(b, port, certs.CA, mode, sslconn.WithSessionCache(nil)))
		})
	}
	// The floor: the TLS handshake alone, with crypto/tls (last, so that
	// benchstat compares it with the bare driver).
	b.Run("REQUIRED/impl=tls-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := mysqlTLSFloor(hostPort(port)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResume: reconnecting with the library's shared session cache
// (its default) against none; resumed/op says how many handshakes resumed.
func BenchmarkResume(b *testing.B) {
	env := scenarios.Get(b)
	matrix.BenchResume(b, func(b *testing.B, opts ...sslconn.Option) {
		matrix.BenchConnect(b, libConnector(b, env.servers[1].Port, env.certs.CA, sslconn.VerifyIdentity, opts...))
	})
}

// BenchmarkQuery: SELECT 1 on one open TLS connection, library against the
// bare driver: the library must add nothing per operation.
func BenchmarkQuery(b *testing.B) {
	env := scenarios.Get(b)
	certs, port := env.certs, env.servers[1].Port
	b.Run("impl=bare", func(b *testing.B) {
		matrix.BenchQuery(b, bareConnector(b, port, matrix.BareTLS(b, certs.CA, sslconn.VerifyIdentity, "localhost")))
	})
	b.Run("impl=sslconn", func(b *testing.B) { matrix.BenchQuery(b, libConnector(b, port, certs.CA, sslconn.VerifyIdentity)) })
}

// mysqlTLSFloor does the least a MySQL TLS connection needs: read the
// greeting, send an SSLRequest, complete the TLS handshake.
func mysqlTLSFloor(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, c, int64(h[0])|int64(h[1])<<8|int64(h[2])<<16); err != nil {
		return err
	}
	req := make([]byte, 4+32)
	req[0], req[3] = 32, 1
	binary.LittleEndian.PutUint32(req[4:], 0x0800|0x0200|0x8000|0x00080000) // SSL, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
	binary.LittleEndian.PutUint32(req[8:], 1<<24)
	req[12] = 45 // utf8mb4
	if _, err := c.Write(req); err != nil {
		return err
	}
	return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
}

// BenchmarkConnectPlaintext: PREFERRED, the default, against a server
// without TLS, next to the bare driver in plaintext (the greeting says
// that TLS is off: nothing to find out).
//
//	go test -run '^$' -bench ConnectPlaintext ./mysqlssl
func BenchmarkConnectPlaintext(b *testing.B) {
	port := scenarios.Get(b).servers[0].Port
	matrix.BenchConnectPlaintext(b, map[string]func(*testing.B) driver.Connector{
		"bare": func(b *testing.B) driver.Connector { return bareConnector(b, port, nil) },
		"sslconn": func(b *testing.B) driver.Connector {
			c, err := NewConnector(dsn(testenv.MySQLUser, testenv.MySQLPassword, "localhost", port, "ssl-mode=PREFERRED"))
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	})
}
