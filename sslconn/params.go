package sslconn

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
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
	"enabledsslciphersuites":           ParamCipher,
}

func normParam(k string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(k)))
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

// Params is what the shared parameters of a DSN said.
type Params struct {
	// Mode is the ssl-mode given, or 0. Adapters compare it with the
	// driver's own TLS setting to report conflicts.
	Mode Mode
	// Options carry every parameter given, to pass to New before the
	// caller's own options.
	Options []Option
}

// TakeParams removes the shared parameters from q and parses them. A value
// that cannot work is an ErrInvalidOption error naming the parameter; values
// of ssl-ca-password never appear in errors.
func TakeParams(q url.Values) (Params, error) {
	var p Params
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	for _, k := range keys {
		canon, ok := CanonicalParam(k)
		if !ok {
			continue
		}
		vals := q[k]
		delete(q, k)
		v := ""
		if len(vals) > 0 {
			v = vals[len(vals)-1]
		}
		if err := p.add(canon, k, v); err != nil {
			return Params{}, err
		}
	}
	return p, nil
}

func (p *Params) add(canon, given, v string) error {
	if strings.TrimSpace(v) == "" && canon != ParamCAPassword {
		return &Error{Kind: ErrInvalidOption, Option: canon, Detail: fmt.Sprintf("parameter %s is empty", given)}
	}
	switch canon {
	case ParamMode:
		m, err := ParseMode(v)
		if err != nil {
			return err
		}
		p.Mode = m
		p.Options = append(p.Options, WithMode(m))
	case ParamCA:
		// Connector/J takes a URL: file:/path or file:///path.
		path := v
		if rest, ok := strings.CutPrefix(path, "file://"); ok {
			path = rest
		} else if rest, ok := strings.CutPrefix(path, "file:"); ok {
			path = rest
		}
		p.Options = append(p.Options, WithCAFile(path))
	case ParamCAPassword:
		p.Options = append(p.Options, WithCAPassword(v))
	case ParamCert:
		p.Options = append(p.Options, func(s *settings) { s.certFile = v; s.clientCert = nil })
	case ParamKey:
		p.Options = append(p.Options, func(s *settings) { s.keyFile = v; s.clientCert = nil })
	case ParamKeyPassword:
		p.Options = append(p.Options, WithClientKeyPassword(v))
	case ParamServerName:
		p.Options = append(p.Options, WithServerName(v))
	case ParamTLSVersion:
		lo, hi, err := parseVersionList(v)
		if err != nil {
			return err
		}
		p.Options = append(p.Options, WithTLSVersions(lo, hi))
	case ParamCipher:
		ids, err := ParseCipherSuites(v)
		if err != nil {
			return err
		}
		p.Options = append(p.Options, WithCipherSuites(ids...))
	}
	return nil
}

// parseVersionList turns MySQL's list of enabled versions into Go's range:
// crypto/tls can only express a contiguous range, so the lowest and the
// highest listed bound it.
func parseVersionList(v string) (lo, hi uint16, err error) {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' || r == ' ' }) {
		ver, err := ParseVersion(s)
		if err != nil {
			return 0, 0, err
		}
		if lo == 0 || ver < lo {
			lo = ver
		}
		if ver > hi {
			hi = ver
		}
	}
	return lo, hi, nil
}
