// Package check is what the sslconn command does: connect to one database
// endpoint in each SSL mode through the adapters, read the certificate chain
// the server sends, and say which mode works and what to change to reach
// VERIFY_IDENTITY. The demo uses it too.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// KindName names the sentinel err matches ("ErrServerNoTLS"), or "".
func KindName(err error) string { return core.KindName(err) }

// Options are the check's settings besides the DSN.
type Options struct {
	Engine     Engine       // "": from the DSN's syntax
	Mode       sslconn.Mode // the mode the verdict and exit status are about; 0: the DSN's ssl-mode, else PREFERRED
	CAFile     string       // overrides the DSN's ssl-ca
	CAPassword string
	ServerName string
	Timeout    time.Duration // per mode; default 10 s
}

// resolve reads the DSN through the adapter that connects with it, as it
// reads it to connect (the check has no reader of its own): the Config the
// chain is judged with, the addresses, and the mode requested (--mode,
// else the adapter's resolution of the DSN).
func resolve(e Engine, dsn string, o Options, opts ...sslconn.Option) (*core.Resolved, sslconn.Mode, error) {
	res, err := core.ResolveDSN(string(e), dsn, opts...)
	if err != nil {
		return nil, 0, err
	}
	if o.Mode != 0 {
		return res, o.Mode, nil
	}
	return res, res.Config.Mode(), nil
}

// Run checks the endpoint in every mode, at once.
func Run(ctx context.Context, dsn string, o Options) (*Report, error) {
	e := o.Engine
	if e == "" {
		var err error
		if e, err = DetectEngine(dsn); err != nil {
			return nil, err
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	// Errors name what the command's flags set by the flag.
	base := []sslconn.Option{core.WithFlags(Flags), sslconn.WithRetryBudget(-1), sslconn.WithHandshakeTimeout(o.Timeout),
		sslconn.WithLogger(slog.New(slog.DiscardHandler))}
	if o.CAFile != "" {
		base = append(base, sslconn.WithCAFile(o.CAFile))
	}
	if o.CAPassword != "" {
		base = append(base, sslconn.WithCAPassword(o.CAPassword))
	}
	if o.ServerName != "" {
		base = append(base, sslconn.WithServerName(o.ServerName))
	}
	// Bad input fails the same in every mode: report it once, before
	// connecting. The Config also judges the chain.
	dsnRead, requested, err := resolve(e, dsn, o, base...)
	if err != nil {
		return nil, err
	}
	var addr string
	if len(dsnRead.Addrs) > 0 {
		addr = dsnRead.Addrs[0]
	}

	var (
		mu    sync.Mutex
		peers []*x509.Certificate
	)
	observe := core.WithObserver(func(_ string, cs tls.ConnectionState) {
		mu.Lock()
		defer mu.Unlock()
		if peers == nil && len(cs.PeerCertificates) > 0 {
			peers = cs.PeerCertificates
		}
	})
	r := &Report{Engine: e, Address: addr, Requested: requested.String()}
	base = append(base, observe)
	var configErrs []error
	r.Modes, configErrs = runModes(ctx, e, dsn, o, base)
	// A DSN the adapter cannot parse fails every mode alike: that is bad
	// input, not a finding. (One mode alone can be invalid: encrypt=strict
	// cannot be DISABLED.)
	if len(configErrs) == len(core.Modes) {
		return nil, configErrs[0]
	}
	// A legacy server: once more with the legacy versions (and so the
	// legacy cipher suites); if that connects, every mode again with the
	// version the server chose, or with the list when it chose TLS 1.2
	// (then it lacked a cipher suite, not a version).
	if m := r.mode(sslconn.Required); m.Kind == KindName(sslconn.ErrTLSVersion) {
		withVersions := func(v string) []sslconn.Option {
			lo, hi, _ := tlsinfo.ParseVersionList(v)
			return append(append([]sslconn.Option{}, base...), sslconn.WithTLSVersions(lo, hi))
		}
		if st, err := connectOne(ctx, e, dsn, o, withVersions(legacyVersions), sslconn.Required); err == nil {
			r.TLSVersion, r.LegacyCipher = legacyVersions, st.Cipher
			if st.Version == "TLSv1" || st.Version == "TLSv1.1" {
				r.TLSVersion = st.Version
			}
			r.Modes, _ = runModes(ctx, e, dsn, o, withVersions(r.TLSVersion))
		}
	}
	if peers != nil {
		r.Chain = analyse(peers, dsnRead.Config, addr)
	}
	r.verdict(requested)
	r.PlaintextLogin = plaintextLogin(e, requested, r.mode(requested))
	return r, nil
}

// plaintextLogin says what a login over plaintext gives away on engine e
// (docs/security.md's table), when the requested mode connected without
// TLS; "" otherwise.
func plaintextLogin(e Engine, requested sslconn.Mode, m ModeResult) string {
	if !m.Connected || m.Encrypted {
		return ""
	}
	why := "ssl-mode=DISABLED"
	if requested == sslconn.Preferred {
		why = "ssl-mode=PREFERRED, and the server offers no TLS here"
	}
	gives, ok := plaintextGives[e]
	if !ok {
		return ""
	}
	return "the account authenticates over plaintext (" + why + "): " + gives +
		"; ssl-mode=REQUIRED or stronger makes the connection fail instead of logging in without TLS"
}

// plaintextGives is what each engine's login gives away to an attacker on
// the path of a connection without TLS (docs/security.md).
var plaintextGives = map[Engine]string{
	MySQL: "mysql_native_password sends a challenge response, with which an attacker on the path can test password guesses offline; caching_sha2_password's full authentication is refused unless get-server-public-key=true or server-public-key-path is set, and mysql_clear_password is sent only under DISABLED",
	Redis: "AUTH sends the password itself, which anyone on the path reads",
	Mongo: "SCRAM sends no password, but an attacker on the path gets material to test password guesses offline, and reads the session",
	MSSQL: "the LOGIN7 packet carries the password, only obfuscated (reversible), which anyone on the path reads",
}

// Flags are the command's flags, by the setting they make: errors name
// these settings by them. The rest are named by their DSN parameter, and
// those the command cannot set (the retry budget) not at all.
var Flags = map[isettings.Knob]string{
	isettings.CA:               "--ca",
	isettings.CAPassword:       "--ca-password",
	isettings.ServerName:       "--server-name",
	isettings.HandshakeTimeout: "--timeout",
}

// plainRedis is a rediss:// URL as redis://, any other DSN unchanged.
func plainRedis(dsn string) string {
	t := strings.TrimSpace(dsn)
	if len(t) >= len("rediss://") && strings.EqualFold(t[:len("rediss://")], "rediss://") {
		return "redis://" + t[len("rediss://"):]
	}
	return dsn
}

// legacyVersions is the tls-version the check tries when the default
// versions fail with a version error.
const legacyVersions = "TLSv1,TLSv1.1,TLSv1.2"

// runModes connects in every mode at once; it also returns the errors of
// the modes that failed on bad input.
func runModes(ctx context.Context, e Engine, dsn string, o Options, base []sslconn.Option) ([]ModeResult, []error) {
	res := make([]ModeResult, len(core.Modes))
	errs := make([]error, len(core.Modes))
	var wg sync.WaitGroup
	for i, m := range core.Modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st sslconn.Status
			st, errs[i] = connectOne(ctx, e, dsn, o, base, m)
			res[i] = Result(m, st, errs[i])
		}()
	}
	wg.Wait()
	var bad []error
	for _, err := range errs {
		if errors.Is(err, sslconn.ErrInvalidOption) || errors.Is(err, sslconn.ErrBadCA) {
			bad = append(bad, err)
		}
	}
	if len(bad) < len(errs) {
		// A mode the DSN's own TLS setting contradicts (tls=true and
		// DISABLED, encrypt=strict and DISABLED, tls=skip-verify and
		// VERIFY_CA) is no finding about the server: the row says so.
		for i, err := range errs {
			var se *sslconn.Error
			if errors.Is(err, sslconn.ErrInvalidOption) && errors.As(err, &se) {
				res[i] = ModeResult{Mode: res[i].Mode, NotApplicable: se.Detail}
			}
		}
	}
	return res, bad
}

// connectOne is one attempt in mode m.
func connectOne(ctx context.Context, e Engine, dsn string, o Options, base []sslconn.Option, m sslconn.Mode) (sslconn.Status, error) {
	// The handshake has its own bound (o.Timeout); this one is for the
	// whole attempt, login and query included, with room for a busy
	// machine (a PREFERRED fallback waits out the handshake bound before
	// it connects again in plaintext).
	cctx, cancel := context.WithTimeout(ctx, 2*o.Timeout+10*time.Second)
	defer cancel()
	if m == sslconn.Disabled && e == Redis {
		// rediss:// turns TLS on, which DISABLED contradicts: ask the
		// same address in plaintext, as redis:// would.
		dsn = plainRedis(dsn)
	}
	return Connect(cctx, e, dsn, append(append([]sslconn.Option{}, base...), sslconn.WithMode(m))...)
}
