// Command demo shows the library at work on this machine: it makes a CA and
// server certificates with the guide's openssl steps, starts private MariaDB
// instances for each server scenario of the SSL-mode contract, connects in
// every mode with mysqlssl, and prints what the server reported (the
// negotiated TLS version) or the typed error. Run it with scripts/demo.sh.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/mysqlssl"
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

func main() {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	defer testenv.Cleanup()
	if err := run(); err != nil {
		testenv.Cleanup()
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	start := time.Now()
	fmt.Println("sslconn demo: one set of SSL modes, verified against real servers")
	fmt.Print("  making a CA and server certificates with openssl and keytool ... ")
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
		{"PEM", certs.CA}, {"DER", certs.CADER}, {"P7B", certs.P7B}, {"JKS", certs.JKS}, {"zip", certs.Zip},
	} {
		c, err := sslconn.ReadCAChain(f.path, "")
		if err != nil {
			return err
		}
		fmt.Printf(" %s=%s", f.name, c[0].Subject.CommonName)
	}
	fmt.Println()

	fmt.Print("  starting 8 private MariaDB instances on loopback ports ... ")
	servers, err := matrix.StartScenarios(certs, testenv.StartMariaDB)
	if err != nil {
		return err
	}
	fmt.Printf("done (%.1fs)\n\n", time.Since(start).Seconds())

	fmt.Println("MySQL (mysqlssl over go-sql-driver/mysql, MariaDB 10.11), ssl-ca=ApsaraDB-CA-Chain.pem,")
	fmt.Println("each cell as the server reports it (SHOW STATUS LIKE 'Ssl_version') or the error sslconn returns:")
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "scenario")
	for _, m := range sslconn.Modes {
		fmt.Fprint(tw, "\t", m)
	}
	fmt.Fprintln(tw)
	examples := map[error]error{}
	for i, s := range servers {
		fmt.Fprint(tw, scenarioText[i])
		for _, m := range sslconn.Modes {
			cell, err := connect(s.Port, m, certs.CA)
			fmt.Fprint(tw, "\t", cell)
			for k := range short {
				if errors.Is(err, k) && examples[k] == nil {
					examples[k] = err
				}
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Println("\nwhat the errors say (in parentheses: the option that changes the outcome):")
	for _, k := range []error{sslconn.ErrServerNoTLS, sslconn.ErrServerRequiresTLS, sslconn.ErrHostnameMismatch, sslconn.ErrTLSVersion} {
		if e := examples[k]; e != nil {
			fmt.Printf("  %s:\n    %s\n", short[k], e)
		}
	}
	fmt.Printf("\ndone in %.1fs; servers stopped.\n", time.Since(start).Seconds())
	return nil
}

func connect(port int, mode sslconn.Mode, ca string) (string, error) {
	dsn := fmt.Sprintf("%s:%s@tcp(localhost:%d)/%s?ssl-mode=%s&ssl-ca=%s",
		testenv.MySQLUser, testenv.MySQLPassword, port, testenv.MySQLDatabase, mode, ca)
	db, err := mysqlssl.Open(dsn, sslconn.WithRetryBudget(-1))
	if err != nil {
		return "config error", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := mysqlssl.Verify(ctx, db)
	if err != nil {
		for k, name := range short {
			if errors.Is(err, k) {
				return name, err
			}
		}
		return "error: " + strings.SplitN(err.Error(), ":", 2)[0], err
	}
	if !st.Encrypted {
		return "plaintext", nil
	}
	return st.Version, nil
}
