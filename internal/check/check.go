// Package check is what the sslconn command does: connect to one database
// endpoint in each SSL mode through the adapters, read the certificate chain
// the server sends, and say which mode works and what to change to reach
// VERIFY_IDENTITY. The demo uses it too.
package check

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Engine is one of the four database engines.
type Engine string

// The engines, by the names the --engine flag takes.
const (
	MySQL Engine = "mysql"
	Redis Engine = "redis"
	Mongo Engine = "mongo"
	MSSQL Engine = "mssql"
)

// Engines lists them in the order the demo shows them.
var Engines = []Engine{MySQL, Redis, Mongo, MSSQL}

// ParseEngine accepts an engine name and a few common aliases.
func ParseEngine(s string) (Engine, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mysql", "mariadb":
		return MySQL, nil
	case "redis":
		return Redis, nil
	case "mongo", "mongodb":
		return Mongo, nil
	case "mssql", "sqlserver", "sql-server":
		return MSSQL, nil
	}
	return "", &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--engine",
		Detail: fmt.Sprintf("unknown engine %q; want mysql, redis, mongo or mssql", s)}
}

var mysqlAddr = regexp.MustCompile(`(?:^|@)(tcp|unix)\(([^)]*)\)`)

// DetectEngine tells the engine from the DSN's syntax: redis:// and
// rediss://, mongodb:// and mongodb+srv://, sqlserver://, odbc: and ADO
// "server=...;" strings, and go-sql-driver's user:pass@tcp(host)/db.
func DetectEngine(dsn string) (Engine, error) {
	l := strings.ToLower(strings.TrimSpace(dsn))
	switch {
	case strings.HasPrefix(l, "redis://"), strings.HasPrefix(l, "rediss://"):
		return Redis, nil
	case strings.HasPrefix(l, "mongodb://"), strings.HasPrefix(l, "mongodb+srv://"):
		return Mongo, nil
	case strings.HasPrefix(l, "sqlserver://"), strings.HasPrefix(l, "odbc:"), adoServer(dsn) != "":
		return MSSQL, nil
	case mysqlAddr.MatchString(dsn):
		return MySQL, nil
	}
	return "", &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--engine",
		Detail: "cannot tell the engine from the DSN; pass --engine mysql, redis, mongo or mssql"}
}

// adoServer returns the server= value of an ADO or ODBC string, or "".
func adoServer(dsn string) string {
	for _, kv := range strings.Split(strings.TrimPrefix(dsn, "odbc:"), ";") {
		k, v, ok := strings.Cut(kv, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "server", "data source", "address", "addr":
			if ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// Endpoint returns the host:port (or socket) a DSN connects to first, for
// reports; it holds no credentials.
func Endpoint(e Engine, dsn string) string {
	switch e {
	case MySQL:
		if m := mysqlAddr.FindStringSubmatch(dsn); m != nil {
			if m[2] == "" {
				return "127.0.0.1:3306"
			}
			return m[2]
		}
	case MSSQL:
		if s := adoServer(dsn); s != "" && !strings.HasPrefix(strings.ToLower(dsn), "sqlserver://") {
			s = strings.TrimPrefix(strings.TrimPrefix(s, "tcp:"), "TCP:")
			if h, p, ok := strings.Cut(s, ","); ok {
				return net.JoinHostPort(strings.TrimSpace(h), strings.TrimSpace(p))
			}
			return s
		}
		fallthrough
	default:
		if u, err := url.Parse(dsn); err == nil && u.Host != "" {
			return strings.Split(u.Host, ",")[0]
		}
		// mongodb://a:1,b:2 does not parse as a URL: take the first host.
		rest := dsn[strings.Index(dsn, "//")+2:]
		if i := strings.LastIndex(rest[:strings.IndexAny(rest+"/", "/?")], "@"); i >= 0 {
			rest = rest[i+1:]
		}
		rest = rest[:strings.IndexAny(rest+"/", "/?")]
		return strings.Split(rest, ",")[0]
	}
	return ""
}

// SilenceDrivers stops go-redis and go-sql-driver/mysql from logging to
// standard error: the check reports every failure itself.
func SilenceDrivers() {
	redis.SetLogger(quietRedis{})
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// Connect connects to dsn through the engine's adapter, runs the adapter's
// Verify, and closes everything.
func Connect(ctx context.Context, e Engine, dsn string, opts ...sslconn.Option) (sslconn.Status, error) {
	switch e {
	case MySQL:
		db, err := mysqlssl.Open(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mysqlssl.Verify(ctx, db)
	case Redis:
		c, err := redisssl.NewClient(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Close()
		return redisssl.Verify(ctx, c)
	case Mongo:
		c, err := mongossl.Connect(ctx, dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Disconnect(context.Background())
		return mongossl.Verify(ctx, c)
	case MSSQL:
		db, err := mssqlssl.Open(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mssqlssl.Verify(ctx, db)
	}
	return sslconn.Status{}, fmt.Errorf("check: unknown engine %q", e)
}

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

// ModeResult is one mode's outcome.
type ModeResult struct {
	Mode      string `json:"mode"`
	Connected bool   `json:"connected"`
	Encrypted bool   `json:"encrypted"`
	Version   string `json:"tls_version,omitempty"`
	Cipher    string `json:"cipher,omitempty"`
	Kind      string `json:"error_kind,omitempty"`
	Error     string `json:"error,omitempty"`
	Detail    string `json:"detail,omitempty"` // the error's diagnosis: which certificate, what is wrong
	Hint      string `json:"hint,omitempty"`
}

// Result is one connection attempt's outcome in mode.
func Result(mode sslconn.Mode, st sslconn.Status, err error) ModeResult {
	res := ModeResult{Mode: mode.String(), Connected: err == nil, Encrypted: st.Encrypted, Version: st.Version, Cipher: st.Cipher}
	if err != nil {
		res.Kind, res.Error = KindName(err), err.Error()
		var se *sslconn.Error
		if errors.As(err, &se) {
			res.Detail, res.Hint = se.Detail, se.Hint
		}
	}
	return res
}

// Cell is the outcome in a word, for tables: the TLS version, "plaintext",
// or the error's sentinel.
func (m ModeResult) Cell() string {
	switch {
	case m.Connected && m.Encrypted:
		return m.Version
	case m.Connected:
		return "plaintext"
	case m.Kind != "":
		return m.Kind
	}
	return "error: " + strings.SplitN(m.Error, ":", 2)[0]
}

// Cert describes one certificate.
type Cert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
	SHA256    string    `json:"sha256"`
	IsCA      bool      `json:"is_ca"`
}

// Describe turns a certificate into a Cert, days counted from now.
func Describe(c *x509.Certificate, now time.Time) Cert {
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	sum := sha256.Sum256(c.Raw)
	return Cert{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), SANs: sans,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		DaysLeft: int(c.NotAfter.Sub(now).Hours() / 24), SHA256: fingerprint(sum[:]), IsCA: c.IsCA,
	}
}

func fingerprint(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Chain is the server's certificate chain and what the CA and host name
// make of it.
type Chain struct {
	Certs      []Cert `json:"certificates"`
	CA         string `json:"ca"` // the CA file, or "system roots"
	CAVerifies bool   `json:"ca_verifies"`
	CAError    string `json:"ca_error,omitempty"`
	Host       string `json:"host"`
	HostOK     bool   `json:"host_matches"`
	HostViaCN  bool   `json:"host_matched_on_cn"`
	HostError  string `json:"host_error,omitempty"`
}

// Report is the whole check.
type Report struct {
	Engine    Engine       `json:"engine"`
	Address   string       `json:"address"`
	Requested string       `json:"requested_mode"`
	OK        bool         `json:"requested_mode_works"`
	Modes     []ModeResult `json:"modes"`
	Chain     *Chain       `json:"chain,omitempty"`
	Strongest string       `json:"strongest_mode,omitempty"`
	// TLSVersion is the tls-version that reaches a server the default
	// versions and cipher suites do not: the legacy version the server
	// chose ("TLSv1"), or TLSv1,TLSv1.1,TLSv1.2 when it chose TLS 1.2 with
	// a legacy cipher suite (LegacyCipher). Modes are then the outcomes
	// with it.
	TLSVersion   string `json:"tls_version_that_works,omitempty"`
	LegacyCipher string `json:"legacy_cipher,omitempty"`
	Verdict      string `json:"verdict"`
}

// dsnParams returns the DSN's parameters (URL query or ADO/ODBC pairs),
// the shared ones under their canonical names (param.Canonical),
// the drivers' own lowercased without '-', '_' and spaces.
func dsnParams(dsn string) map[string]string {
	p := map[string]string{}
	_, query, ok := strings.Cut(dsn, "?")
	if !ok {
		query = dsn
	}
	for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if canon, ok := param.Canonical(k); ok {
			k = canon
		} else {
			k = strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(k))
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		p[k] = strings.Trim(strings.TrimSpace(v), "{}")
	}
	return p
}

// fromDSN returns the CA file and server name a DSN gives (the shared
// parameters or a driver's own), for the report; the connections read them
// through the adapters.
func fromDSN(dsn string) (ca, serverName string) {
	p := dsnParams(dsn)
	for _, k := range []string{param.CA, "tlscafile", "sslcertificateauthorityfile", "certificate"} {
		if v := p[k]; v != "" && ca == "" {
			ca = strings.TrimPrefix(strings.TrimPrefix(v, "file://"), "file:")
		}
	}
	for _, k := range []string{param.ServerName, "hostnameincertificate"} {
		if v := p[k]; v != "" && serverName == "" {
			serverName = v
		}
	}
	return ca, serverName
}

// resolve reads the DSN as the adapter that connects with it does: the
// Config the chain is judged with, and the mode requested (--mode, else the
// adapter's resolution of the DSN).
func resolve(e Engine, dsn string, o Options, opts ...sslconn.Option) (*core.Config, sslconn.Mode, error) {
	cfg, err := core.ResolveDSN(string(e), dsn, opts...)
	if err != nil {
		return nil, 0, err
	}
	if o.Mode != 0 {
		return cfg, o.Mode, nil
	}
	return cfg, cfg.Mode(), nil
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
	base := []sslconn.Option{sslconn.WithRetryBudget(-1), sslconn.WithHandshakeTimeout(o.Timeout),
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
	judge, requested, err := resolve(e, dsn, o, base...)
	if err != nil {
		return nil, err
	}
	if ca, name := fromDSN(dsn); o.CAFile == "" || o.ServerName == "" {
		if o.CAFile == "" {
			o.CAFile = ca
		}
		if o.ServerName == "" {
			o.ServerName = name
		}
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
	r := &Report{Engine: e, Address: Endpoint(e, dsn), Requested: requested.String()}
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
		r.Chain = analyse(peers, judge, o, r.Address)
	}
	r.verdict(requested)
	return r, nil
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
	return Connect(cctx, e, dsn, append(append([]sslconn.Option{}, base...), sslconn.WithMode(m))...)
}

// mode is the outcome in m.
func (r *Report) mode(m sslconn.Mode) ModeResult {
	for _, res := range r.Modes {
		if res.Mode == m.String() {
			return res
		}
	}
	return ModeResult{}
}

func analyse(peers []*x509.Certificate, judge *core.Config, o Options, addr string) *Chain {
	now := time.Now()
	ch := &Chain{CA: "system roots", Host: o.ServerName}
	if o.CAFile != "" {
		ch.CA = o.CAFile
	}
	if ch.Host == "" {
		ch.Host = addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			ch.Host = h
		}
	}
	for _, c := range peers {
		ch.Certs = append(ch.Certs, Describe(c, now))
	}
	// The library's own verification, as a VERIFY_CA handshake runs it.
	if err := judge.VerifyChain(sslconn.VerifyCA, addr, peers); err != nil {
		ch.CAError = err.Error()
	} else {
		ch.CAVerifies = true
	}
	if err := tlsinfo.VerifyHostname(peers[0], ch.Host); err != nil {
		ch.HostError = err.Error()
	} else {
		ch.HostOK, ch.HostViaCN = true, !tlsinfo.HasSAN(peers[0])
	}
	return ch
}

func (r *Report) verdict(requested sslconn.Mode) {
	byMode := map[string]ModeResult{}
	for _, m := range r.Modes {
		byMode[m.Mode] = m
		if m.Connected && (m.Encrypted || m.Mode == sslconn.Disabled.String() || r.Strongest == "") {
			r.Strongest = m.Mode
		}
	}
	// With a tls-version the DSN lacks, only DISABLED worked as given.
	r.OK = byMode[requested.String()].Connected && (r.TLSVersion == "" || requested == sslconn.Disabled)
	vi, vca := byMode[sslconn.VerifyIdentity.String()], byMode[sslconn.VerifyCA.String()]
	req := byMode[sslconn.Required.String()]
	// The server offers TLS, but even REQUIRED fails, for a reason of TLS's
	// own: a certificate Go refuses, no common version, mutual TLS.
	tlsFault := !req.Connected && tlsFaults[req.Kind]
	var b strings.Builder
	switch {
	case r.TLSVersion == legacyVersions:
		fmt.Fprintf(&b, "the server's TLS 1.2 offers only legacy cipher suites (it chose %s): tls-version=%s works (add it to the DSN: the legacy suites come with it), as does ssl-cipher=%s; with it, ", r.LegacyCipher, r.TLSVersion, r.LegacyCipher)
	case r.TLSVersion != "":
		fmt.Fprintf(&b, "the server speaks only TLS versions below 1.2: tls-version=%s works (add it to the DSN; the legacy cipher suites come with it); with it, ", r.TLSVersion)
	}
	switch {
	case r.Strongest == "":
		b.WriteString("no mode connects")
		if d := byMode[sslconn.Disabled.String()]; tlsFault {
			b.WriteString(": the server offers TLS but no mode that encrypts connects: " + reason(req))
		} else if d.Error != "" {
			b.WriteString(": " + firstLine(d.Error))
		}
	case vi.Connected:
		b.WriteString("VERIFY_IDENTITY works: encrypted, and the server proved it is " + r.hostName())
		if r.Chain != nil && r.Chain.HostViaCN {
			b.WriteString(". The host name matched only the certificate's Common Name (it has no SAN): " +
				"Go's crypto/tls and newer clients reject such certificates; reissue it with subjectAltName=DNS:" + r.hostName())
		}
	default:
		fmt.Fprintf(&b, "strongest mode that works: %s", r.Strongest)
		if !req.Connected && !byMode[sslconn.Preferred.String()].Encrypted {
			if tlsFault {
				b.WriteString("; the server offers TLS but no mode that encrypts connects: " + reason(req))
				break
			}
			b.WriteString("; the server offers no TLS here: enable SSL on the instance (or connect to its TLS port)")
			break
		}
		b.WriteString(". To reach VERIFY_IDENTITY: ")
		switch {
		case !vca.Connected && vca.Hint != "":
			b.WriteString(reason(vca))
		case vi.Hint != "":
			b.WriteString(reason(vi))
		default:
			b.WriteString(firstLine(vi.Error))
		}
	}
	switch {
	case !r.OK && r.TLSVersion != "" && byMode[requested.String()].Connected:
		fmt.Fprintf(&b, ". The requested mode %s works only with tls-version=%s", requested, r.TLSVersion)
	case !r.OK:
		fmt.Fprintf(&b, ". The requested mode %s does not work", requested)
	}
	r.Verdict = b.String()
}

// tlsFaults are the kinds that fail REQUIRED against a server that does
// offer TLS.
var tlsFaults = map[string]bool{
	KindName(sslconn.ErrBadCertificate):     true,
	KindName(sslconn.ErrTLSVersion):         true,
	KindName(sslconn.ErrClientCertRequired): true,
}

// reason is what went wrong in m and what fixes it: the error's diagnosis
// (which certificate, what it holds) and its advice.
func reason(m ModeResult) string {
	switch {
	case m.Detail != "" && m.Hint != "":
		return m.Detail + "; " + m.Hint
	case m.Detail != "":
		return m.Detail
	}
	return firstLine(m.Error)
}

func (r *Report) hostName() string {
	if r.Chain != nil {
		return r.Chain.Host
	}
	return r.Address
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "sslconn check: %s at %s (requested mode %s)\n\n", r.Engine, r.Address, r.Requested)
	if r.TLSVersion != "" {
		fmt.Fprintf(w, "  the default TLS versions and cipher suites fail here; with tls-version=%s:\n", r.TLSVersion)
	}
	fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", "MODE", "RESULT", "TLS", "CIPHER / ERROR")
	for _, m := range r.Modes {
		switch {
		case m.Connected && m.Encrypted:
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, "connected, TLS", m.Version, m.Cipher)
		case m.Connected:
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, "connected, plaintext", "-", "-")
		default:
			kind := m.Kind
			if kind == "" {
				kind = "error"
			}
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, kind, "-", firstLine(m.Error))
		}
	}
	if c := r.Chain; c != nil {
		fmt.Fprintf(w, "\n  server certificate chain, as sent:\n")
		for i, cert := range c.Certs {
			fmt.Fprintf(w, "  [%d] %s\n", i, cert.Subject)
			fmt.Fprintf(w, "      issuer     %s\n", cert.Issuer)
			if len(cert.SANs) > 0 {
				fmt.Fprintf(w, "      SANs       %s\n", strings.Join(cert.SANs, ", "))
			} else if i == 0 {
				fmt.Fprintf(w, "      SANs       none (a CN-only certificate)\n")
			}
			fmt.Fprintf(w, "      not after  %s (%s)\n", cert.NotAfter.Format("2006-01-02"), daysText(cert.DaysLeft))
		}
		if c.CAVerifies {
			fmt.Fprintf(w, "  the CA (%s) verifies it: yes\n", c.CA)
		} else {
			fmt.Fprintf(w, "  the CA (%s) verifies it: no: %s\n", c.CA, firstLine(c.CAError))
		}
		switch {
		case c.HostOK && c.HostViaCN:
			fmt.Fprintf(w, "  host name %q: matches, on the Common Name only (no SAN)\n", c.Host)
		case c.HostOK:
			fmt.Fprintf(w, "  host name %q: matches a SAN\n", c.Host)
		default:
			fmt.Fprintf(w, "  host name %q: does not match: %s\n", c.Host, firstLine(c.HostError))
		}
	}
	fmt.Fprintf(w, "\n  verdict: %s.\n", strings.TrimSuffix(r.Verdict, "."))
}

func daysText(d int) string {
	switch {
	case d < 0:
		return fmt.Sprintf("EXPIRED %d days ago", -d)
	case d <= 30:
		return fmt.Sprintf("%d days left: renew soon", d)
	}
	return fmt.Sprintf("%d days left", d)
}
