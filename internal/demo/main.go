// Command demo shows the library at work on this machine: it makes a CA and
// server certificates with the guide's openssl steps, starts private
// MariaDB, Redis, MongoDB-wire (FerretDB) and TDS servers for each server
// scenario of the SSL-mode contract, connects in every mode through the four
// adapters, and prints what each connection reported (the negotiated TLS
// version) or the typed error. Run it with scripts/demo.sh.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/tdsserver"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

var scenarioText = []string{
	"S0 server without TLS",
	"S1 TLS optional, SAN cert",
	"S2 TLS forced",
	"S3 cert for another host",
	"S4 cert from another CA",
	"S5 CN-only cert (guide's)",
	"S6 expired cert",
	"S7 TLS 1.0/1.1 only",
}

var short = map[error]string{
	sslconn.ErrServerNoTLS:        "ErrServerNoTLS",
	sslconn.ErrServerRequiresTLS:  "ErrServerRequiresTLS",
	sslconn.ErrUnknownAuthority:   "ErrUnknownAuthority",
	sslconn.ErrHostnameMismatch:   "ErrHostnameMismatch",
	sslconn.ErrCertExpired:        "ErrCertExpired",
	sslconn.ErrTLSVersion:         "ErrTLSVersion",
	sslconn.ErrClientCertRequired: "ErrClientCertRequired",
}

// engine is one adapter and its test servers.
type engine struct {
	title   string
	start   func(*testenv.Certs) error
	connect func(ctx context.Context, addr string, mode sslconn.Mode, ca string) (sslconn.Status, error)
	// addrFor picks the address for a mode (Redis and FerretDB keep TLS on its own port).
	addrFor func(sc int, mode sslconn.Mode) string
}

func main() {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	redis.SetLogger(quiet{})
	err := run()
	testenv.Cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func run() error {
	start := time.Now()
	fmt.Println("sslconn demo: one set of SSL modes on four engines, against real servers on this machine")
	fmt.Print("  making a CA and server certificates with openssl and keytool (the guide's steps) ... ")
	dir, err := testenv.TempDir("demo-certs")
	if err != nil {
		return err
	}
	certs, err := testenv.MakeCerts(dir)
	if err != nil {
		return err
	}
	fmt.Println("done")
	fmt.Print("  reading the CA download in every format:")
	for _, f := range []struct{ name, path string }{
		{"PEM", certs.ChainPEM}, {"DER", certs.CADER}, {"P7B", certs.P7B}, {"JKS", certs.JKS}, {"zip", certs.Zip},
	} {
		c, err := sslconn.ReadCAChain(f.path, "")
		if err != nil {
			return err
		}
		fmt.Printf(" %s=%s", f.name, c[0].Subject.CommonName)
	}
	fmt.Println()

	engines := []*engine{mysqlEngine(), redisEngine(), mongoEngine(), mssqlEngine()}
	fmt.Print("  starting 8 servers per engine (MariaDB, Redis, FerretDB, TDS) on loopback ports ... ")
	var wg sync.WaitGroup
	errs := make([]error, len(engines))
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.start(certs)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("done (%.1fs)\n", time.Since(start).Seconds())

	examples := map[error]error{}
	for _, e := range engines {
		fmt.Printf("\n%s, ssl-ca=ApsaraDB-CA-Chain.pem:\n", e.title)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "  scenario")
		for _, m := range sslconn.Modes {
			fmt.Fprint(tw, "\t", m)
		}
		fmt.Fprintln(tw)
		cells := make([][5]string, 8)
		var cwg sync.WaitGroup
		var mu sync.Mutex
		for sc := range 8 {
			for mi, m := range sslconn.Modes {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					st, err := e.connect(ctx, e.addrFor(sc, m), m, certs.ChainPEM)
					cell := cellText(st, err)
					mu.Lock()
					defer mu.Unlock()
					cells[sc][mi] = cell
					for k := range short {
						if errors.Is(err, k) && examples[k] == nil {
							examples[k] = err
						}
					}
				}()
			}
		}
		cwg.Wait()
		for sc := range 8 {
			fmt.Fprint(tw, "  ", scenarioText[sc])
			for _, c := range cells[sc] {
				fmt.Fprint(tw, "\t", c)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	fmt.Println("\nwhat the errors say (in parentheses: the option that changes the outcome):")
	for _, k := range []error{sslconn.ErrServerNoTLS, sslconn.ErrServerRequiresTLS, sslconn.ErrHostnameMismatch, sslconn.ErrTLSVersion} {
		if e := examples[k]; e != nil {
			fmt.Printf("  %s:\n    %s\n", short[k], e)
		}
	}
	fmt.Printf("\ndone in %.1fs; servers stopped.\n", time.Since(start).Seconds())
	return nil
}

func cellText(st sslconn.Status, err error) string {
	if err != nil {
		for k, name := range short {
			if errors.Is(err, k) {
				return name
			}
		}
		return "error: " + strings.SplitN(err.Error(), ":", 2)[0]
	}
	if !st.Encrypted {
		return "plaintext"
	}
	return st.Version
}

func hostPort(port int) string { return net.JoinHostPort("localhost", strconv.Itoa(port)) }

func mysqlEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{title: "MySQL (mysqlssl, go-sql-driver/mysql, MariaDB 10.11; Ssl_version as the server reports it)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartMariaDB)
		return err
	}
	e.addrFor = func(sc int, _ sslconn.Mode) string { return hostPort(servers[sc].Port) }
	e.connect = func(ctx context.Context, addr string, mode sslconn.Mode, ca string) (sslconn.Status, error) {
		dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?ssl-mode=%s&ssl-ca=%s", testenv.MySQLUser, testenv.MySQLPassword, addr, testenv.MySQLDatabase, mode, ca)
		db, err := mysqlssl.Open(dsn, sslconn.WithRetryBudget(-1))
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mysqlssl.Verify(ctx, db)
	}
	return e
}

func redisEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{title: "Redis (redisssl, go-redis v9, Redis 7.0; plaintext modes on port, the others on tls-port)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartRedis)
		return err
	}
	e.addrFor = func(sc int, m sslconn.Mode) string { return hostPort(matrix.PortFor(sc, servers[sc], m)) }
	e.connect = func(ctx context.Context, addr string, mode sslconn.Mode, ca string) (sslconn.Status, error) {
		c, err := redisssl.NewClient(fmt.Sprintf("redis://:%s@%s/0?ssl-mode=%s&ssl-ca=%s", testenv.RedisPassword, addr, mode, ca), sslconn.WithRetryBudget(-1))
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Close()
		return redisssl.Verify(ctx, c)
	}
	return e
}

func mongoEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{title: "MongoDB (mongossl, mongo-driver v2, FerretDB 1.24; plaintext modes on one port, the others on the TLS port)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartFerretDB)
		return err
	}
	e.addrFor = func(sc int, m sslconn.Mode) string { return hostPort(matrix.PortFor(sc, servers[sc], m)) }
	e.connect = func(ctx context.Context, addr string, mode sslconn.Mode, ca string) (sslconn.Status, error) {
		c, err := mongossl.Connect(ctx, fmt.Sprintf("mongodb://%s/?ssl-mode=%s&ssl-ca=%s", addr, mode, ca), sslconn.WithRetryBudget(-1))
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Disconnect(context.Background())
		return mongossl.Verify(ctx, c)
	}
	return e
}

func mssqlEngine() *engine {
	var servers [8]*tdsserver.Server
	e := &engine{title: "SQL Server (mssqlssl, go-mssqldb, the project's TDS test server; encrypt_option as the server reports it)"}
	e.start = func(c *testenv.Certs) error {
		for i := range servers {
			conf, err := tdsserver.ForScenario(testenv.Scenario(c, i), "sa", "Tds-Secret-pw1")
			if err != nil {
				return err
			}
			s, err := tdsserver.Start(conf)
			if err != nil {
				return err
			}
			servers[i] = s
		}
		return nil
	}
	e.addrFor = func(sc int, _ sslconn.Mode) string { return hostPort(servers[sc].Port()) }
	e.connect = func(ctx context.Context, addr string, mode sslconn.Mode, ca string) (sslconn.Status, error) {
		db, err := mssqlssl.Open(fmt.Sprintf("sqlserver://sa:Tds-Secret-pw1@%s?ssl-mode=%s&ssl-ca=%s", addr, mode, ca), sslconn.WithRetryBudget(-1))
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mssqlssl.Verify(ctx, db)
	}
	return e
}
