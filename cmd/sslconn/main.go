// Command sslconn checks a database endpoint's TLS set-up and handles the
// CA files cloud consoles hand out.
//
//	sslconn check [flags] DSN        connect in each SSL mode, show the chain, give a verdict
//	sslconn ca inspect [flags] FILE  list the certificates of a PEM, DER, P7B, JKS or zip CA file
//	sslconn ca convert --to FORMAT [--out FILE] FILE
//	                                 write the CA as pem, p7b, p7b-der or jks
//
// The DSN is any the adapters take (go-sql-driver/mysql, redis://,
// mongodb://, sqlserver:// or ADO/ODBC); the engine comes from its syntax or
// --engine. To keep a password out of shell history and ps, give the DSN in
// SSLCONN_DSN instead. Keystore passwords come from --ca-password or
// SSLCONN_CA_PASSWORD (and --out-password or SSLCONN_OUT_PASSWORD) and are
// never printed; ca convert --to jks prints the default password when it
// used it.
//
// Exit status: 0 when the requested mode works (check) or every certificate
// has more than 30 days left (inspect); 1 when not; 2 for bad input.
//
// Install: go install github.com/sslconn/sslconn/cmd/sslconn@latest
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sslconn/sslconn/internal/bridge"
	"github.com/sslconn/sslconn/internal/check"
	"github.com/sslconn/sslconn/sslconn"
)

const usage = `usage:
  sslconn check [--engine E] [--mode M] [--ca FILE] [--server-name NAME] [--timeout D] [--json] DSN
  sslconn ca inspect [--ca-password PW] [--json] FILE
  sslconn ca convert --to pem|p7b|p7b-der|jks [--out FILE] [--ca-password PW] [--out-password PW] FILE

The DSN may come from SSLCONN_DSN; passwords from SSLCONN_CA_PASSWORD and SSLCONN_OUT_PASSWORD.
Exit status: 0 works, 1 does not (requested mode fails, or a certificate expires within 30 days), 2 bad input.
`

// Exit statuses.
const (
	exitOK  = 0
	exitBad = 1 // the requested mode fails; a certificate expires soon
	exitUse = 2 // bad input
)

func main() {
	check.SilenceDrivers()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is the command, testable: arguments, outputs and environment in,
// exit status out.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUse
	}
	switch args[0] {
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr, getenv)
	case "ca":
		if len(args) > 1 {
			switch args[1] {
			case "inspect":
				return runInspect(args[2:], stdout, stderr, getenv)
			case "convert":
				return runConvert(args[2:], stdout, stderr, getenv)
			}
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprint(stderr, usage)
	return exitUse
}

// parse parses flags anywhere among the arguments (sslconn check DSN --json
// works too) and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

// fail prints an error (the library's errors hold no password) and
// returns the bad-input status.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "sslconn: "+unprefixed(err))
	return exitUse
}

// unprefixed is err's text without the "sslconn: " the library's errors
// start with: each line the command prints carries one prefix.
func unprefixed(err error) string {
	return strings.TrimPrefix(err.Error(), "sslconn: ")
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("check", stderr)
	var (
		o       check.Options
		engine  = fs.String("engine", "", "mysql, redis, mongo or mssql (default: from the DSN)")
		mode    = fs.String("mode", "", "the mode the verdict and exit status are about (default: the DSN's ssl-mode, else PREFERRED)")
		asJSON  = fs.Bool("json", false, "print JSON")
		timeout = fs.Duration("timeout", 10*time.Second, "handshake timeout per mode")
	)
	fs.StringVar(&o.CAFile, "ca", "", "CA file (PEM, DER, P7B, JKS, zip); overrides the DSN's ssl-ca")
	fs.StringVar(&o.ServerName, "server-name", "", "host name to verify instead of the one connected to")
	caPW := fs.String("ca-password", "", "keystore password (or SSLCONN_CA_PASSWORD)")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUse
	}
	dsn := getenv("SSLCONN_DSN")
	switch {
	case len(pos) == 1:
		dsn = pos[0]
	case len(pos) > 1 || dsn == "":
		fmt.Fprint(stderr, usage)
		return exitUse
	}
	o.CAPassword = firstNonEmpty(*caPW, getenv("SSLCONN_CA_PASSWORD"))
	o.Timeout = *timeout
	if *engine != "" {
		if o.Engine, err = check.ParseEngine(*engine); err != nil {
			return fail(stderr, err)
		}
	}
	if *mode != "" {
		if o.Mode, err = sslconn.ParseMode(*mode); err != nil {
			return fail(stderr, err)
		}
	}
	r, err := check.Run(ctx, dsn, o)
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		r.WriteText(stdout)
	}
	if !r.OK {
		return exitBad
	}
	return exitOK
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func readCA(fs *flag.FlagSet, args []string, stderr io.Writer, getenv func(string) string, extra func()) (string, []string, int) {
	caPW := fs.String("ca-password", "", "keystore password; default apsaradb (or SSLCONN_CA_PASSWORD)")
	if extra != nil {
		extra()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return "", nil, exitUse
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, usage)
		return "", nil, exitUse
	}
	return pos[0], []string{firstNonEmpty(*caPW, getenv("SSLCONN_CA_PASSWORD"))}, exitOK
}

func runInspect(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("ca inspect", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	file, pw, code := readCA(fs, args, stderr, getenv, nil)
	if code != exitOK {
		return code
	}
	certs, err := check.ReadCA(file, pw[0])
	// The format detected, and the certificates of a file that parses but
	// holds no CA certificate (a server's own certificate): shown, with
	// why it cannot serve as ssl-ca.
	all, format, _ := bridge.ReadCerts(file, pw[0])
	notCA := false
	if err != nil {
		if certs = all; len(certs) == 0 {
			return fail(stderr, err)
		}
		notCA = true
	}
	now := time.Now()
	var warnings int
	if *asJSON {
		var out []check.Cert
		for _, c := range certs {
			d := check.Describe(c, now)
			if d.DaysLeft <= check.ExpiryWarningDays {
				warnings++
			}
			out = append(out, d)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		warnings = check.WriteInspect(stdout, file, format, certs, now)
	}
	if notCA {
		fmt.Fprintf(stderr, "sslconn: warning: %s\n", unprefixed(err))
	}
	if warnings > 0 {
		fmt.Fprintf(stderr, "sslconn: warning: %d certificate(s) expire within %d days or have expired\n", warnings, check.ExpiryWarningDays)
	}
	if notCA || warnings > 0 {
		return exitBad
	}
	return exitOK
}

func runConvert(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("ca convert", stderr)
	var to, out, outPW *string
	file, pw, code := readCA(fs, args, stderr, getenv, func() {
		to = fs.String("to", "", "pem, p7b, p7b-der or jks")
		out = fs.String("out", "", "output file (default: standard output)")
		outPW = fs.String("out-password", "", "password of a jks output; default apsaradb (or SSLCONN_OUT_PASSWORD)")
	})
	if code != exitOK {
		return code
	}
	if *to == "" {
		return fail(stderr, &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--to", Detail: "give the output format"})
	}
	certs, err := check.ReadCA(file, pw[0])
	if err != nil {
		return fail(stderr, err)
	}
	keystorePW := firstNonEmpty(*outPW, getenv("SSLCONN_OUT_PASSWORD"))
	data, err := check.Convert(certs, *to, keystorePW)
	if err != nil {
		return fail(stderr, err)
	}
	if *out == "" {
		_, err = stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if *out != "" {
		fmt.Fprintf(stderr, "sslconn: wrote %d certificate(s) to %s as %s\n", len(certs), *out, *to)
	}
	if strings.EqualFold(*to, "jks") {
		// The keystore is no use without its password; one the user gave
		// is a secret and is named, not printed.
		switch {
		case *outPW != "":
			fmt.Fprintln(stderr, "sslconn: keystore password: the one given with --out-password")
		case keystorePW != "":
			fmt.Fprintln(stderr, "sslconn: keystore password: the one in SSLCONN_OUT_PASSWORD")
		default:
			fmt.Fprintf(stderr, "sslconn: keystore password: %s (the default; --out-password sets another)\n", sslconn.DefaultJKSPassword)
		}
	}
	return exitOK
}
