// Package param is the shared DSN parameters every adapter accepts next
// to the driver's own (ssl-mode, ssl-ca, ...): their names and aliases,
// their reading into sslconn options, and the checks that catch a
// misspelt one or an overlong DSN.
package param

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// The shared DSN parameters every adapter accepts, next to the driver's own.
// Names match ignoring case, '-' and '_' (ssl-mode, ssl_mode, sslMode), and
// MySQL Connector/J's names are accepted too, so settings from the guides'
// Java samples can be pasted as they are.
const (
	Mode        = "ssl-mode"          // DISABLED ... VERIFY_IDENTITY; Connector/J sslMode
	CA          = "ssl-ca"            // CA file, any format; Connector/J trustCertificateKeyStoreUrl
	CAPassword  = "ssl-ca-password"   // JKS/PKCS#12 password; Connector/J trustCertificateKeyStorePassword
	Cert        = "ssl-cert"          // client certificate (PEM file)
	Key         = "ssl-key"           // client key (PEM file, may be encrypted)
	KeyPassword = "ssl-key-password"  // password of an encrypted ssl-key; libpq sslpassword
	ServerName  = "ssl-server-name"   // host name to verify instead of the one connected to
	TLSVersion  = "tls-version"       // e.g. TLSv1.2,TLSv1.3; Connector/J enabledTLSProtocols, tlsVersions
	Cipher      = "ssl-cipher"        // OpenSSL or IANA names, ':' or ',' separated
	CASystem    = "ssl-ca-system"     // include: trust the system roots too; Connector/J fallbackToSystemTrustStore
	DeadPeer    = "dead-peer-timeout" // 10s, or off: how long a silent server may hold an operation
)

// aliases maps normalised names to the canonical parameter.
var aliases = map[string]string{
	"sslmode":                          Mode,
	"sslca":                            CA,
	"sslrootcert":                      CA, // libpq
	"trustcertificatekeystoreurl":      CA,
	"sslcapassword":                    CAPassword,
	"trustcertificatekeystorepassword": CAPassword,
	"sslcert":                          Cert,
	"sslkey":                           Key,
	"sslkeypassword":                   KeyPassword,
	"sslpassword":                      KeyPassword,
	"sslservername":                    ServerName,
	"tlsversion":                       TLSVersion,
	"tlsversions":                      TLSVersion,
	"enabledtlsprotocols":              TLSVersion,
	"sslcipher":                        Cipher,
	"sslcasystem":                      CASystem,
	"fallbacktosystemtruststore":       CASystem,
	"enabledsslciphersuites":           Cipher,
	"tlsciphersuites":                  Cipher, // Connector/J 8.0.28+
	"deadpeertimeout":                  DeadPeer,
}

// foreign are other clients' parameters whose meaning is not exactly one
// of ours (a Java keystore where we take PEM files, a boolean where we take
// a mode): each is answered with the parameter that does the job. Without
// this, the driver would send them to the server (MySQL: SQL error 1064) or
// ignore them, and the setting the user meant would not apply.
var foreign = map[string]string{
	// MySQL Connector/J
	"usessl":                            "did you mean ssl-mode? (Connector/J's useSSL=true is ssl-mode=PREFERRED, or REQUIRED with requireSSL=true; useSSL=false is ssl-mode=DISABLED)",
	"requiressl":                        "did you mean ssl-mode=REQUIRED? (Connector/J's requireSSL=true)",
	"verifyservercertificate":           "did you mean ssl-mode=VERIFY_CA? (Connector/J's verifyServerCertificate=true checks the chain against trustCertificateKeyStoreUrl, which is ssl-ca)",
	"clientcertificatekeystoreurl":      "did you mean ssl-cert and ssl-key? (they take the client certificate and its key as PEM files, where Connector/J's clientCertificateKeyStoreUrl takes a keystore: export them with openssl pkcs12 -in keystore.p12 -nodes)",
	"clientcertificatekeystorepassword": "did you mean ssl-key-password? (it is the password of an encrypted ssl-key PEM file; a keystore's password is not needed once the certificate and key are exported to ssl-cert and ssl-key)",
	"clientcertificatekeystoretype":     "did you mean ssl-cert and ssl-key? (they take PEM files; no keystore type is needed)",
	"trustcertificatekeystoretype":      "no type is needed: ssl-ca (Connector/J's trustCertificateKeyStoreUrl) reads PEM, DER, JKS and PKCS#12 and tells them apart itself",
	// MariaDB Connector/J
	"serversslcert":                  "did you mean ssl-ca? (MariaDB Connector/J's serverSslCert; ssl-ca takes the CA that signed the server's certificate)",
	"truststore":                     "did you mean ssl-ca? (it reads a JKS or PKCS#12 truststore too, with ssl-ca-password)",
	"truststorepassword":             "did you mean ssl-ca-password?",
	"keystore":                       "did you mean ssl-cert and ssl-key? (they take the client certificate and its key as PEM files: export them with openssl pkcs12 -in keystore.p12 -nodes)",
	"keystorepassword":               "did you mean ssl-key-password? (the password of an encrypted ssl-key PEM file)",
	"disablesslhostnameverification": "did you mean ssl-mode=VERIFY_CA? (it checks the chain but not the host name)",
	"enabledsslprotocolsuites":       "did you mean tls-version? (e.g. tls-version=TLSv1.2,TLSv1.3)",
}

var separators = strings.NewReplacer("-", "", "_", "")

func norm(k string) string {
	return separators.Replace(strings.ToLower(strings.TrimSpace(k)))
}

// Is reports whether name is one of the shared parameters, in any spelling.
func Is(name string) bool {
	_, ok := Canonical(name)
	return ok
}

// Canonical returns the shared parameter name (CA, ...) for any of
// its spellings and aliases (sslCA, trustCertificateKeyStoreUrl, ...).
func Canonical(name string) (string, bool) {
	canon, ok := aliases[norm(name)]
	return canon, ok
}

// Options parses the shared parameters in q (any spelling) into options.
// A value that cannot work is an ErrInvalidOption error naming the parameter;
// values of ssl-ca-password and ssl-key-password never appear in errors.
func Options(q url.Values) ([]sslconn.Option, error) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	var opts []sslconn.Option
	for _, k := range keys {
		canon, ok := Canonical(k)
		if !ok {
			continue
		}
		vals := q[k]
		v := ""
		if len(vals) > 0 {
			v = vals[len(vals)-1]
		}
		o, err := option(canon, k, v)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return opts, nil
}

func option(canon, given, v string) (sslconn.Option, error) {
	if strings.TrimSpace(v) == "" && canon != CAPassword {
		return nil, invalid(canon, fmt.Sprintf("parameter %s is empty", given), nil)
	}
	switch canon {
	case Mode:
		m, err := sslconn.ParseMode(v)
		if err != nil {
			return nil, err
		}
		return sslconn.WithMode(m), nil
	case CA:
		if norm(given) == "sslrootcert" && v == "system" {
			return sslconn.WithSystemRoots(), nil // libpq 16's sslrootcert=system
		}
		// Connector/J takes a URL: file:/path or file:///path.
		path := v
		if rest, ok := strings.CutPrefix(path, "file://"); ok {
			path = rest
		} else if rest, ok := strings.CutPrefix(path, "file:"); ok {
			path = rest
		}
		return sslconn.WithCAFile(path), nil
	case CAPassword:
		return sslconn.WithCAPassword(v), nil
	case Cert:
		return sslconn.WithClientCertFiles(v, ""), nil
	case Key:
		return sslconn.WithClientCertFiles("", v), nil
	case KeyPassword:
		return sslconn.WithClientKeyPassword(v), nil
	case ServerName:
		return sslconn.WithServerName(v), nil
	case TLSVersion:
		lo, hi, err := tlsinfo.ParseVersionList(v)
		if err != nil {
			return nil, invalid(TLSVersion, err.Error(), nil)
		}
		return sslconn.WithTLSVersions(lo, hi), nil
	case CASystem:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "include", "true":
			return sslconn.WithSystemRoots(), nil
		case "exclude", "false":
			return nil, nil // the default; New skips nil options
		}
		return nil, invalid(CASystem, fmt.Sprintf("ssl-ca-system is %q; use include (trust the system roots as well as ssl-ca) or exclude (ssl-ca alone, the default)", v), nil)
	case DeadPeer:
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "off") || v == "0" {
			return sslconn.WithDeadPeerTimeout(-1), nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			// Plain seconds, as MySQL's timeouts are written.
			n, nerr := strconv.ParseFloat(v, 64)
			if nerr != nil || n < 0 {
				return nil, invalid(DeadPeer, fmt.Sprintf("dead-peer-timeout is %q; want a duration such as 10s, or off", v), nil)
			}
			d = time.Duration(n * float64(time.Second))
		}
		if d < 0 {
			return nil, invalid(DeadPeer, fmt.Sprintf("dead-peer-timeout is %q; want a duration such as 10s, or off", v), nil)
		}
		if d == 0 {
			return sslconn.WithDeadPeerTimeout(-1), nil
		}
		return sslconn.WithDeadPeerTimeout(d), nil
	case Cipher:
		ids, err := tlsinfo.ParseCipherSuites(v)
		if err != nil {
			return nil, invalid(Cipher, err.Error(), nil)
		}
		return sslconn.WithCipherSuites(ids...), nil
	}
	panic("BUG: unhandled parameter " + canon)
}

// CheckUnknown reports a parameter that is neither ours nor the driver's
// (known) but is another client's name for a setting of ours (foreign:
// useSSL, clientCertificateKeyStoreUrl, ...), or looks like one of ours:
// it starts with "ssl" or "tls", or is
// within two edits of one of the long Connector/J names. (Short names are
// not matched by distance: MySQL's sql_mode is one edit from ssl-mode.) Such a parameter would
// otherwise reach the server (MySQL sends it as a session variable) or be
// ignored, and the setting the user meant would silently not apply.
func CheckUnknown(keys []string, known func(string) bool) error {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if Is(k) || (known != nil && known(k)) {
			continue
		}
		if advice, ok := foreign[norm(k)]; ok {
			return invalid(k, fmt.Sprintf("unknown parameter %q; %s", k, advice), nil)
		}
		if meant, ok := suspect(k); ok {
			return invalid(k, fmt.Sprintf("unknown parameter %q; did you mean %s?", k, meant), nil)
		}
	}
	return nil
}

// suspect returns the shared parameter key most likely meant, and whether
// key looks like one at all.
func suspect(key string) (string, bool) {
	n := norm(key)
	if len(n) > 64 {
		n = n[:64] // no parameter name is that long; bound the quadratic distance
	}
	best, bestD, near := "", 1<<30, false
	for alias, canon := range aliases {
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

// maxDSN bounds the length of a DSN: real ones are a few hundred bytes, and
// some drivers' parsers take time quadratic in it (go-mssqldb's odbc: parser
// needs seconds for 100 KB).
const maxDSN = 16 << 10

// CheckLength rejects a DSN longer than maxDSN, before any parser sees it.
func CheckLength(dsn string) error {
	if len(dsn) > maxDSN {
		return invalid("dsn", fmt.Sprintf("the DSN is %d bytes long; at most %d are accepted", len(dsn), maxDSN), nil)
	}
	return nil
}

// invalid is an ErrInvalidOption error naming option.
func invalid(option, detail string, err error) *sslconn.Error {
	return &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: option, Detail: detail, Err: err}
}
