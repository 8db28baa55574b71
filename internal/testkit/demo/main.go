// Command demo shows the library at work on this machine: it makes a CA and
// server certificates with the guide's openssl steps, starts private
// MariaDB, Redis, MongoDB-wire (FerretDB) and TDS servers for each server
// scenario of the SSL-mode contract, runs the sslconn command's check
// against each engine, then connects in every mode to every scenario through
// the four adapters and prints what each connection reported (the negotiated
// TLS version) or the typed error. Run it with scripts/demo.sh, which builds
// the sslconn command and passes it in SSLCONN_BIN.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sslconn/sslconn/internal/check"
	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/tdsserver"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
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

// engine is one adapter and its test servers.
type engine struct {
	check.Engine
	title string
	start func(*testenv.Certs) error
	// dsn is the DSN for a scenario and mode; Redis and FerretDB keep TLS
	// on a port of its own.
	dsn func(sc int, mode sslconn.Mode) string
}

func main() {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	check.SilenceDrivers()
	err := run()
	testenv.Cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

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
	if err := testenv.PrepareFerretDB(os.Stdout); err != nil {
		return err
	}
	fmt.Println("  starting 8 servers per engine, one per scenario of the contract, on loopback ports:")
	var wg sync.WaitGroup
	errs := make([]error, len(engines))
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if errs[i] = e.start(certs); errs[i] == nil {
				fmt.Printf("    %-6s up (%.1fs)\n", e.Engine, time.Since(t0).Seconds())
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := runChecks(engines, certs); err != nil {
		return err
	}

	examples := map[error]error{}
	for _, e := range engines {
		fmt.Printf("\n%s, ssl-ca=ApsaraDB-CA-Chain.pem:\n", e.title)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "  scenario")
		for _, m := range core.Modes {
			fmt.Fprint(tw, "\t", m)
		}
		fmt.Fprintln(tw)
		cells := make([][5]string, 8)
		var cwg sync.WaitGroup
		var mu sync.Mutex
		for sc := range 8 {
			for mi, m := range core.Modes {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					st, err := check.Connect(ctx, e.Engine, e.dsn(sc, m)+"ssl-mode="+m.String()+"&ssl-ca="+certs.ChainPEM, sslconn.WithRetryBudget(-1))
					cell := check.Result(m, st, err).Cell()
					mu.Lock()
					defer mu.Unlock()
					cells[sc][mi] = cell
					for _, k := range exampleKinds {
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
	for _, k := range exampleKinds {
		if e := examples[k]; e != nil {
			fmt.Printf("  %s:\n    %s\n", check.KindName(k), e)
		}
	}
	fmt.Printf("\ndone in %.1fs; servers stopped.\n", time.Since(start).Seconds())
	return nil
}

// exampleKinds are the errors whose text the demo shows.
var exampleKinds = []error{sslconn.ErrServerNoTLS, sslconn.ErrServerRequiresTLS, sslconn.ErrHostnameMismatch, sslconn.ErrTLSVersion}

func hostPort(port int) string { return net.JoinHostPort("localhost", strconv.Itoa(port)) }

// The DSNs below end in '?' or '&', ready for the ssl-* parameters.

func mysqlEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{Engine: check.MySQL, title: "MySQL (mysqlssl, go-sql-driver/mysql, MariaDB 10.11; Ssl_version as the server reports it)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartMariaDB)
		return err
	}
	e.dsn = func(sc int, _ sslconn.Mode) string {
		return fmt.Sprintf("%s:%s@tcp(%s)/%s?", testenv.MySQLUser, testenv.MySQLPassword, hostPort(servers[sc].Port), testenv.MySQLDatabase)
	}
	return e
}

func redisEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{Engine: check.Redis, title: "Redis (redisssl, go-redis v9, Redis 7.0; plaintext modes on port, the others on tls-port)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartRedis)
		return err
	}
	e.dsn = func(sc int, m sslconn.Mode) string {
		return fmt.Sprintf("redis://:%s@%s/0?", testenv.RedisPassword, hostPort(matrix.PortFor(sc, servers[sc], m)))
	}
	return e
}

func mongoEngine() *engine {
	var servers [8]*testenv.Server
	e := &engine{Engine: check.Mongo, title: "MongoDB (mongossl, mongo-driver v2, FerretDB 1.24; plaintext modes on one port, the others on the TLS port)"}
	e.start = func(c *testenv.Certs) (err error) {
		servers, err = matrix.StartScenarios(c, testenv.StartFerretDB)
		return err
	}
	e.dsn = func(sc int, m sslconn.Mode) string {
		return fmt.Sprintf("mongodb://%s/?", hostPort(matrix.PortFor(sc, servers[sc], m)))
	}
	return e
}

func mssqlEngine() *engine {
	var servers [8]*tdsserver.Server
	e := &engine{Engine: check.MSSQL, title: "SQL Server (mssqlssl, go-mssqldb, the project's TDS test server; encrypt_option as the server reports it)"}
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
	e.dsn = func(sc int, _ sslconn.Mode) string {
		return fmt.Sprintf("sqlserver://sa:Tds-Secret-pw1@%s?database=master&", hostPort(servers[sc].Port()))
	}
	return e
}

// runChecks runs the sslconn command's check as a user would against an
// instance: the command built by scripts/demo.sh when SSLCONN_BIN names
// it, else the same code in process. First in full against MySQL with the
// guide's CN-only certificate (S5), then against each engine's server with
// TLS optional (S1), one row per engine.
func runChecks(engines []*engine, certs *testenv.Certs) error {
	bin := os.Getenv("SSLCONN_BIN")
	sslconnCheck := func(dsn string, asJSON bool) ([]byte, error) {
		args := []string{"check", "--ca", certs.ChainPEM, "--mode", "VERIFY_IDENTITY", dsn}
		if bin == "" {
			r, err := check.Run(context.Background(), dsn, check.Options{CAFile: certs.ChainPEM, Mode: sslconn.VerifyIdentity})
			if err != nil || asJSON {
				out, _ := json.Marshal(r)
				return out, err
			}
			var b strings.Builder
			r.WriteText(&b)
			return []byte(b.String()), nil
		}
		if asJSON {
			args = append([]string{"check", "--json"}, args[1:]...)
		}
		out, err := exec.Command(bin, args...).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			err = nil // the requested mode failed: the report says why
		}
		return out, err
	}
	dsn := strings.TrimRight(engines[0].dsn(5, sslconn.VerifyIdentity), "?&")
	fmt.Printf("\n$ sslconn check --ca ApsaraDB-CA-Chain.pem --mode VERIFY_IDENTITY '%s'   # the guide's CN-only certificate\n", redactDSN(dsn))
	out, err := sslconnCheck(dsn, false)
	if err != nil {
		return err
	}
	os.Stdout.Write(out)
	reports := make([]*check.Report, len(engines))
	for i, e := range engines {
		out, err := sslconnCheck(strings.TrimRight(e.dsn(1, sslconn.VerifyIdentity), "?&"), true)
		if err != nil {
			return fmt.Errorf("sslconn check %s: %w", e.Engine, err)
		}
		reports[i] = new(check.Report)
		if err := json.Unmarshal(out, reports[i]); err != nil {
			return err
		}
	}
	fmt.Println("\nsslconn check against every engine (TLS optional, certificate from the CA), engine × mode:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  engine")
	for _, m := range core.Modes {
		fmt.Fprint(tw, "\t", m)
	}
	fmt.Fprintln(tw, "\tstrongest")
	for _, r := range reports {
		fmt.Fprint(tw, "  ", r.Engine)
		for _, m := range r.Modes {
			fmt.Fprint(tw, "\t", m.Cell())
		}
		fmt.Fprintln(tw, "\t", r.Strongest)
	}
	return tw.Flush()
}

// redactDSN hides the password of a DSN for display.
func redactDSN(dsn string) string {
	at := strings.Index(dsn, "@")
	colon := strings.LastIndex(dsn[:max(at, 0)], ":")
	if at < 0 || colon < 0 {
		return dsn
	}
	return dsn[:colon+1] + "****" + dsn[at:]
}
