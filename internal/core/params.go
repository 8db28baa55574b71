package core

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// The shared DSN parameters every adapter accepts, next to the driver's own.
// Names match ignoring case, '-' and '_' (ssl-mode, ssl_mode, sslMode), and
// MySQL Connector/J's names are accepted too, so settings from the guides'
// Java samples can be pasted as they are.
const (
	ParamMode        = "ssl-mode"         // DISABLED ... VERIFY_IDENTITY; Connector/J sslMode
	ParamCA          = "ssl-ca"           // CA file, any format; Connector/J trustCertificateKeyStoreUrl
	ParamCAPassword  = "ssl-ca-password"  // JKS/PKCS#12 password; Connector/J trustCertificateKeyStorePassword
	ParamCert        = "ssl-cert"         // client certificate (PEM file)
	ParamKey         = "ssl-key"          // client key (PEM file, may be encrypted)
	ParamKeyPassword = "ssl-key-password" // password of an encrypted ssl-key; libpq sslpassword
	ParamServerName  = "ssl-server-name"  // host name to verify instead of the one connected to
	ParamTLSVersion  = "tls-version"      // e.g. TLSv1.2,TLSv1.3; Connector/J enabledTLSProtocols, tlsVersions
	ParamCipher      = "ssl-cipher"       // OpenSSL or IANA names, ':' or ',' separated
	ParamCASystem    = "ssl-ca-system"    // include: trust the system roots too; Connector/J fallbackToSystemTrustStore
)

// paramKeys maps normalised names to the canonical parameter.
var paramKeys = map[string]string{
	"sslmode":                          ParamMode,
	"sslca":                            ParamCA,
	"trustcertificatekeystoreurl":      ParamCA,
	"sslcapassword":                    ParamCAPassword,
	"trustcertificatekeystorepassword": ParamCAPassword,
	"sslcert":                          ParamCert,
	"sslkey":                           ParamKey,
	"sslkeypassword":                   ParamKeyPassword,
	"sslpassword":                      ParamKeyPassword,
	"sslservername":                    ParamServerName,
	"tlsversion":                       ParamTLSVersion,
	"tlsversions":                      ParamTLSVersion,
	"enabledtlsprotocols":              ParamTLSVersion,
	"sslcipher":                        ParamCipher,
	"sslcasystem":                      ParamCASystem,
	"fallbacktosystemtruststore":       ParamCASystem,
	"enabledsslciphersuites":           ParamCipher,
}

var paramSeparators = strings.NewReplacer("-", "", "_", "")

func normParam(k string) string {
	return paramSeparators.Replace(strings.ToLower(strings.TrimSpace(k)))
}

// IsParam reports whether name is one of the shared parameters, in any spelling.
func IsParam(name string) bool {
	_, ok := CanonicalParam(name)
	return ok
}

// CanonicalParam returns the shared parameter name (ParamCA, ...) for any of
// its spellings and aliases (sslCA, trustCertificateKeyStoreUrl, ...).
func CanonicalParam(name string) (string, bool) {
	canon, ok := paramKeys[normParam(name)]
	return canon, ok
}

// Native is what a driver's own settings say about TLS, in the adapter's
// reading: the mode they map onto, how the user wrote the deciding setting
// (for errors), and the options they carry (CA file, client certificate,
// server name, versions).
type Native struct {
	Mode    sslconn.Mode // 0: the driver's settings say nothing about TLS
	Setting string       // e.g. "tls=skip-verify", "encrypt=true&TrustServerCertificate=true"
	Options []sslconn.Option
}

// Spec is everything a DSN or driver config says, as an adapter read it.
type Spec struct {
	Native Native
	// TLS is a *tls.Config the user set on the driver's config (its
	// TLSConfig field), read with NativeTLS when Native says nothing.
	TLS *tls.Config
	// Params are the shared ssl-* parameters the DSN carried, in any spelling.
	Params url.Values
	// Secrets are kept out of every error text (the DSN's passwords).
	Secrets []string
	// Probe is the engine's plaintext question for PREFERRED (see
	// PlainProbe); nil for engines that negotiate TLS in their protocol.
	Probe PlainProbe
}

// Resolve builds the Config for spec and the caller's options: the driver's
// own options first, then the DSN's ssl-* parameters, then opts, so a later
// one wins. The mode is the explicit one (ssl-mode or WithMode), else the
// driver's setting, else VERIFY_CA when a CA is given, else PREFERRED. An
// explicit mode refines the driver's setting and is an ErrInvalidOption
// error, naming both, only when they contradict: the driver turns TLS off
// and the mode encrypts, the driver turns TLS on and the mode is DISABLED,
// or the driver turns verification off and the mode verifies.
func Resolve(spec Spec, opts ...sslconn.Option) (*Config, error) {
	params, err := takeParams(spec.Params)
	if err != nil {
		return nil, Redact(err, spec.Secrets...)
	}
	if spec.TLS != nil && spec.Native.Mode == 0 {
		n, err := NativeTLS(spec.TLS, "TLSConfig")
		if err != nil {
			return nil, err
		}
		spec.Native = n
	}
	all := append([]sslconn.Option(nil), spec.Native.Options...)
	if spec.Native.Mode != 0 {
		all = append(all, WithDefaultMode(spec.Native.Mode))
	}
	all = append(all, params...)
	all = append(all, opts...)
	cfg, err := New(all...)
	if err != nil {
		return nil, Redact(err, spec.Secrets...)
	}
	if err := Conflict(spec.Native, cfg.ExplicitMode()); err != nil {
		return nil, err
	}
	cfg.probe = spec.Probe
	return cfg, nil
}

// Conflict is the one conflict rule between a driver's TLS setting and an
// explicit mode; nil when they agree or one is unset.
func Conflict(native Native, explicit sslconn.Mode) error {
	n := native.Mode
	if n == 0 || explicit == 0 {
		return nil
	}
	var says, but string
	switch {
	case n == sslconn.Disabled && explicit != sslconn.Disabled:
		says, but = "turns TLS off", "would encrypt"
	case n >= sslconn.Required && explicit == sslconn.Disabled:
		says, but = "turns TLS on", "would not encrypt"
	case n == sslconn.Required && explicit >= sslconn.VerifyCA:
		says, but = "turns certificate verification off", "verifies"
	default:
		return nil
	}
	return InvalidOption(ParamMode, fmt.Sprintf("the driver's setting %s %s but ssl-mode=%s %s; drop one of them", native.Setting, says, explicit, but), nil)
}

// takeParams parses the shared parameters in q (any spelling) into options.
// A value that cannot work is an ErrInvalidOption error naming the parameter;
// values of ssl-ca-password and ssl-key-password never appear in errors.
func takeParams(q url.Values) ([]sslconn.Option, error) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	var opts []sslconn.Option
	for _, k := range keys {
		canon, ok := CanonicalParam(k)
		if !ok {
			continue
		}
		vals := q[k]
		v := ""
		if len(vals) > 0 {
			v = vals[len(vals)-1]
		}
		o, err := paramOption(canon, k, v)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return opts, nil
}

func paramOption(canon, given, v string) (sslconn.Option, error) {
	if strings.TrimSpace(v) == "" && canon != ParamCAPassword {
		return nil, InvalidOption(canon, fmt.Sprintf("parameter %s is empty", given), nil)
	}
	switch canon {
	case ParamMode:
		m, err := sslconn.ParseMode(v)
		if err != nil {
			return nil, err
		}
		return sslconn.WithMode(m), nil
	case ParamCA:
		// Connector/J takes a URL: file:/path or file:///path.
		path := v
		if rest, ok := strings.CutPrefix(path, "file://"); ok {
			path = rest
		} else if rest, ok := strings.CutPrefix(path, "file:"); ok {
			path = rest
		}
		return sslconn.WithCAFile(path), nil
	case ParamCAPassword:
		return sslconn.WithCAPassword(v), nil
	case ParamCert:
		return sslconn.WithClientCertFiles(v, ""), nil
	case ParamKey:
		return sslconn.WithClientCertFiles("", v), nil
	case ParamKeyPassword:
		return sslconn.WithClientKeyPassword(v), nil
	case ParamServerName:
		return sslconn.WithServerName(v), nil
	case ParamTLSVersion:
		lo, hi, err := tlsinfo.ParseVersionList(v)
		if err != nil {
			return nil, InvalidOption(ParamTLSVersion, err.Error(), nil)
		}
		return sslconn.WithTLSVersions(lo, hi), nil
	case ParamCASystem:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "include", "true":
			return sslconn.WithSystemRoots(), nil
		case "exclude", "false":
			return nil, nil // the default; New skips nil options
		}
		return nil, InvalidOption(ParamCASystem, fmt.Sprintf("ssl-ca-system is %q; use include (trust the system roots as well as ssl-ca) or exclude (ssl-ca alone, the default)", v), nil)
	case ParamCipher:
		ids, err := tlsinfo.ParseCipherSuites(v)
		if err != nil {
			return nil, InvalidOption(ParamCipher, err.Error(), nil)
		}
		return sslconn.WithCipherSuites(ids...), nil
	}
	panic("BUG: unhandled parameter " + canon)
}

// CheckUnknown reports a parameter that is neither ours nor the driver's
// (known) but looks like one of ours: it starts with "ssl" or "tls", or is
// within two edits of one of the long Connector/J names. (Short names are
// not matched by distance: MySQL's sql_mode is one edit from ssl-mode.) Such a parameter would
// otherwise reach the server (MySQL sends it as a session variable) or be
// ignored, and the setting the user meant would silently not apply.
func CheckUnknown(keys []string, known func(string) bool) error {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if IsParam(k) || (known != nil && known(k)) {
			continue
		}
		if meant, ok := suspect(k); ok {
			return InvalidOption(k, fmt.Sprintf("unknown parameter %q; did you mean %s?", k, meant), nil)
		}
	}
	return nil
}

// suspect returns the shared parameter key most likely meant, and whether
// key looks like one at all.
func suspect(key string) (string, bool) {
	n := normParam(key)
	if len(n) > 64 {
		n = n[:64] // no parameter name is that long; bound the quadratic distance
	}
	best, bestD, near := "", 1<<30, false
	for alias, canon := range paramKeys {
		d := editDistance(n, alias)
		if d < bestD || (d == bestD && canon < best) {
			best, bestD = canon, d
		}
		near = near || (d <= 2 && len(alias) >= 10)
	}
	prefixed := strings.HasPrefix(n, "ssl") || strings.HasPrefix(n, "tls")
	return best, prefixed || near
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours each cost one.
func editDistance(a, b string) int {
	// Three rolling rows (the transposition looks two back), on the stack
	// for the short names compared here: every new client checks its
	// DSN's keys against every alias.
	var buf [3][65]int
	var rows [3][]int
	for i := range rows {
		if len(b) < len(buf[i]) {
			rows[i] = buf[i][:len(b)+1]
		} else {
			rows[i] = make([]int, len(b)+1)
		}
	}
	prev2, prev, cur := rows[0], rows[1], rows[2]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// resolvers hold each adapter's reading of its DSNs, registered by the
// adapter's init, so that the sslconn command reads a DSN exactly as the
// adapter that will connect with it does, and in no other way.
var resolvers sync.Map // engine name -> func(string, ...sslconn.Option) (*Resolved, error)

// Resolved is an adapter's reading of a DSN, without connecting: the
// Config its connections use and the addresses it dials (host:port, or a
// Unix socket's path), the one dialled first first.
type Resolved struct {
	Config *Config
	Addrs  []string
}

// RegisterResolver records how an adapter reads a DSN and options.
func RegisterResolver(engine string, f func(dsn string, opts ...sslconn.Option) (*Resolved, error)) {
	resolvers.Store(engine, f)
}

// ResolveDSN reads dsn as the engine's adapter does, without connecting.
func ResolveDSN(engine, dsn string, opts ...sslconn.Option) (*Resolved, error) {
	f, ok := resolvers.Load(engine)
	if !ok {
		panic("BUG: no resolver registered for " + engine)
	}
	return f.(func(string, ...sslconn.Option) (*Resolved, error))(dsn, opts...)
}

// MaxDSN bounds the length of a DSN: real ones are a few hundred bytes, and
// some drivers' parsers take time quadratic in it (go-mssqldb's odbc: parser
// needs seconds for 100 KB).
const MaxDSN = 16 << 10

// CheckLength rejects a DSN longer than MaxDSN, before any parser sees it.
func CheckLength(dsn string) error {
	if len(dsn) > MaxDSN {
		return InvalidOption("dsn", fmt.Sprintf("the DSN is %d bytes long; at most %d are accepted", len(dsn), MaxDSN), nil)
	}
	return nil
}
