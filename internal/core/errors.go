package core

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"strings"

	"github.com/sslconn/sslconn/internal/bridge"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/sslconn"
)

// kind is everything the library knows about one sentinel: the name
// reports use (the Go identifier), the setting that changes the outcome,
// the advice (named as the user sets things, see advise), and whether
// retrying can help.
type kind struct {
	name      string
	knob      isettings.Knob // 0: none
	hint      func(n *isettings.Sources) string
	permanent bool
}

// kinds is the one table of error kinds.
var kinds = map[error]kind{
	sslconn.ErrServerNoTLS: {"ErrServerNoTLS", isettings.Mode, func(n *isettings.Sources) string {
		return orWeaker("enable SSL on the instance", n, "PREFERRED", "to fall back to plaintext")
	}, true},
	sslconn.ErrServerRequiresTLS: {"ErrServerRequiresTLS", isettings.Mode, func(n *isettings.Sources) string {
		return "the instance forces SSL: use " + n.Setting(isettings.Mode, "REQUIRED") + " or stronger"
	}, true},
	sslconn.ErrUnknownAuthority: {"ErrUnknownAuthority", isettings.CA, func(n *isettings.Sources) string {
		return orWeaker("set "+n.Name(isettings.CA)+" to the instance's CA chain (e.g. ApsaraDB-CA-Chain.pem)", n, "REQUIRED", "to encrypt without verifying")
	}, true},
	sslconn.ErrHostnameMismatch: {"ErrHostnameMismatch", isettings.ServerName, func(n *isettings.Sources) string {
		return orWeaker("connect by the name in the certificate, or set "+n.Name(isettings.ServerName)+" to it", n, "VERIFY_CA", "to check the chain only")
	}, true},
	sslconn.ErrCertExpired: {"ErrCertExpired", isettings.Mode, func(n *isettings.Sources) string {
		return orWeaker("renew the server certificate (check the machine's clock)", n, "REQUIRED", "to encrypt without verifying")
	}, true},
	sslconn.ErrBadCertificate: {"ErrBadCertificate", isettings.Mode, func(n *isettings.Sources) string {
		return orWeaker("reissue the server certificate", n, "REQUIRED", "to encrypt without verifying")
	}, true},
	sslconn.ErrTLSVersion: {"ErrTLSVersion", isettings.TLSVersion, func(n *isettings.Sources) string {
		return "a legacy instance needs an explicit " + n.Name(isettings.TLSVersion) + ", e.g. " + n.Setting(isettings.TLSVersion, "TLSv1,TLSv1.1,TLSv1.2") +
			" (a lowest version below TLS 1.2 also offers the legacy cipher suites), or an " + n.Name(isettings.Cipher) + " it offers; sslconn check finds the version that works"
	}, true},
	sslconn.ErrClientCertRequired: {"ErrClientCertRequired", isettings.Cert, func(n *isettings.Sources) string {
		if name := n.Name(isettings.Cert); name != "ssl-cert" {
			return "set " + name + " to a client certificate and key the server's CA signed"
		}
		return "set ssl-cert and ssl-key to a client certificate the server's CA signed"
	}, true},
	sslconn.ErrHandshakeTimeout: {"ErrHandshakeTimeout", isettings.HandshakeTimeout, func(n *isettings.Sources) string {
		return sets("check that the address is the database's port and reachable without a stalling proxy", n.Name(isettings.HandshakeTimeout), "the bound")
	}, false},
	sslconn.ErrUnavailable: {"ErrUnavailable", isettings.RetryBudget, func(n *isettings.Sources) string {
		return sets("check that the server is running and the host and port are right", n.Name(isettings.RetryBudget), "how long to wait")
	}, true},
	sslconn.ErrBadCA:          {"ErrBadCA", isettings.CA, nil, true},
	sslconn.ErrInvalidOption:  {"ErrInvalidOption", 0, nil, true},
	sslconn.ErrNotSent:        {"ErrNotSent", 0, nil, false},
	sslconn.ErrOutcomeUnknown: {"ErrOutcomeUnknown", 0, nil, true},
}

// weakerSep joins a fix to the weaker mode that avoids the failing check;
// WithoutWeaker cuts there.
const weakerSep = "; or use "

// orWeaker is fix, then the weaker mode that avoids the check, and what
// that mode gives up.
func orWeaker(fix string, n *isettings.Sources, mode, what string) string {
	return fix + weakerSep + n.Setting(isettings.Mode, mode) + " " + what
}

// WithoutWeaker is a hint without its weaker-mode alternative: the sslconn
// command's verdict is about reaching the stronger mode.
func WithoutWeaker(hint string) string {
	if i := strings.LastIndex(hint, weakerSep); i >= 0 {
		return hint[:i]
	}
	return hint
}

// sets is advice, then the knob that sets what (none: the advice alone).
func sets(advice, knob, what string) string {
	if knob == "" {
		return advice
	}
	return advice + "; " + knob + " sets " + what
}

// defaultNames names settings for an error made without a Config: as DSN
// parameters, else options.
var defaultNames isettings.Sources

// advise sets e's option and hint from the table, named as n says (nil:
// defaultNames).
func advise(e *sslconn.Error, n *isettings.Sources) {
	if n == nil {
		n = &defaultNames
	}
	info := kinds[e.Kind]
	e.Option, e.Hint = "", ""
	if info.knob != 0 {
		e.Option = n.Name(info.knob)
	}
	if info.hint != nil {
		e.Hint = info.hint(n)
	}
}

// sentinels lists the sentinels in the order reports show them.
var sentinels = []error{
	sslconn.ErrServerNoTLS, sslconn.ErrServerRequiresTLS, sslconn.ErrUnknownAuthority,
	sslconn.ErrHostnameMismatch, sslconn.ErrCertExpired, sslconn.ErrBadCertificate, sslconn.ErrTLSVersion,
	sslconn.ErrClientCertRequired, sslconn.ErrHandshakeTimeout, sslconn.ErrUnavailable,
	sslconn.ErrBadCA, sslconn.ErrInvalidOption, sslconn.ErrNotSent, sslconn.ErrOutcomeUnknown,
}

// kindOf returns the sentinel err matches, or nil.
func kindOf(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range sentinels {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// KindName is the name of the sentinel err matches ("ErrUnknownAuthority"),
// or "" when it matches none.
func KindName(err error) string { return kinds[kindOf(err)].name }

// NewError returns an *sslconn.Error of the given kind with the table's
// option and hint.
func NewError(k error, mode sslconn.Mode, host, detail string, err error) *sslconn.Error {
	e := &sslconn.Error{Kind: k, Mode: mode, Host: host, Detail: detail, Err: err}
	advise(e, nil)
	return e
}

// InvalidOption is an ErrInvalidOption error naming option.
func InvalidOption(option, detail string, err error) *sslconn.Error {
	return &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: option, Detail: detail, Err: err}
}

// Classify maps a raw crypto/tls, x509 or network error from a connection
// attempt onto the sentinels, keeping the original in the chain. It returns
// err unchanged when it recognises nothing; an *sslconn.Error without mode
// or host comes back as a copy with them filled in (err itself is never
// changed).
func Classify(err error, mode sslconn.Mode, host string) error {
	if err == nil {
		return nil
	}
	var se *sslconn.Error
	if errors.As(err, &se) {
		if (se.Mode != 0 || mode == 0) && (se.Host != "" || host == "") {
			return err
		}
		cp := *se
		if cp.Mode == 0 {
			cp.Mode = mode
		}
		if cp.Host == "" {
			cp.Host = host
		}
		return &cp
	}
	if k := rawKind(err); k != nil {
		e := NewError(k, mode, host, "", err)
		explainCert(e, err, nil)
		explainVersion(e, err, nil)
		return e
	}
	return err
}

// rawKind recognises crypto/tls's, x509's and the network's own errors.
func rawKind(err error) error {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		ope *net.OpError
	)
	switch {
	case errors.Is(err, bridge.ErrNoCertificate):
		return sslconn.ErrUnknownAuthority
	case errors.As(err, &ua):
		if isSHA1(err) {
			return sslconn.ErrBadCertificate
		}
		return sslconn.ErrUnknownAuthority
	case errors.As(err, new(x509.InsecureAlgorithmError)):
		return sslconn.ErrBadCertificate
	case errors.As(err, &he):
		return sslconn.ErrHostnameMismatch
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return sslconn.ErrCertExpired
		case x509.NotAuthorizedToSign, x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
			return sslconn.ErrUnknownAuthority
		case x509.IncompatibleUsage:
			return sslconn.ErrBadCertificate
		}
		return nil
	case errors.As(err, &rh):
		// The server answered a ClientHello with something that is not TLS.
		return sslconn.ErrServerNoTLS
	case errors.As(err, &ae):
		return alertKind(uint8(ae))
	case errors.As(err, &ope) && ope.Op == "remote error":
		// crypto/tls reports the peer's alerts with an unexported uint8 type.
		if v := reflect.ValueOf(ope.Err); v.IsValid() && v.Kind() == reflect.Uint8 {
			return alertKind(uint8(v.Uint()))
		}
	}
	// Some drivers flatten crypto/tls errors into text (go-mssqldb wraps
	// handshake errors with %v): recognise them by crypto/tls's wording.
	msg := err.Error()
	for _, s := range []string{
		"tls: server selected unsupported protocol version",
		"tls: no supported versions satisfy MinVersion and MaxVersion",
		"tls: server chose an unconfigured cipher suite",
		"remote error: tls: protocol version not supported",
		"remote error: tls: handshake failure",
		"remote error: tls: insufficient security level",
	} {
		if strings.Contains(msg, s) {
			return sslconn.ErrTLSVersion
		}
	}
	if strings.Contains(msg, "remote error: tls: certificate required") {
		return sslconn.ErrClientCertRequired
	}
	if strings.Contains(msg, negativeSerial) {
		return sslconn.ErrBadCertificate
	}
	return nil
}

// alertKind maps TLS alert codes (RFC 8446 §6) the server sends.
func alertKind(code uint8) error {
	switch code {
	case 40, 70, 71: // handshake_failure, protocol_version, insufficient_security
		return sslconn.ErrTLSVersion
	case 42, 116: // bad_certificate (TLS 1.2 without a client cert), certificate_required
		return sslconn.ErrClientCertRequired
	}
	return nil
}

// IsPermanent reports whether retrying cannot help: the kinds the table
// marks permanent, errors marked with Permanent, and a host name that does
// not exist.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	// An ended context is not checked here: a connect timeout also matches
	// context.DeadlineExceeded, and is worth retrying. Retry stops when the
	// caller's own context ends.
	// A host name that does not exist (a typo, a deleted instance) does not
	// come back by waiting; a DNS timeout or server failure might.
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return true
	}
	if k := kindOf(err); k != nil {
		return kinds[k].permanent
	}
	return rawKind(err) != nil
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err so that Retry stops at once (bad credentials, unknown
// database). errors.Is and errors.As see through the mark.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Redact returns err with every non-empty secret replaced by "xxxxx" in
// its text, keeping the chain for errors.Is and errors.As. In an
// *sslconn.Error only what may hold the user's text (Detail, Option, Host,
// the wrapped error) is redacted: the sentinel's words and the Hint are the
// library's own, and a short password must not mangle them. Adapters pass
// DSN passwords and tokens through it, so no error they return contains one.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var se *sslconn.Error
	if errors.As(err, &se) && se == err {
		cp := *se
		cp.Detail, cp.Option, cp.Host = redactText(se.Detail, secrets), redactText(se.Option, secrets), redactText(se.Host, secrets)
		if se.Err != nil {
			cp.Err = Redact(se.Err, secrets...)
		}
		if cp.Detail == se.Detail && cp.Option == se.Option && cp.Host == se.Host && cp.Err == se.Err {
			return err
		}
		return &cp
	}
	msg := redactText(err.Error(), secrets)
	if msg == err.Error() {
		return err
	}
	return &redacted{err: err, msg: msg}
}

func redactText(s string, secrets []string) string {
	for _, sec := range secrets {
		switch {
		case sec == "":
		case len(sec) >= wholeWordBelow:
			s = strings.ReplaceAll(s, sec, "xxxxx")
		default:
			s = redactWord(s, sec)
		}
	}
	return s
}

// wholeWordBelow is the length under which a secret is masked only where
// it stands as a word of its own: a password "p" would otherwise mask
// every p of a message ("dial tcxxxxx"). In a DSN, a URI or a driver's
// message a password stands between delimiters (":", "@", "=", quotes,
// spaces).
const wholeWordBelow = 8

// redactWord masks the occurrences of sec in s that no letter or digit
// adjoins.
func redactWord(s, sec string) string {
	var b strings.Builder
	from := 0 // s[:from] is in b
	for at := 0; ; {
		i := strings.Index(s[at:], sec)
		if i < 0 {
			break
		}
		i += at
		end := i + len(sec)
		if (i > 0 && isWordByte(s[i-1])) || (end < len(s) && isWordByte(s[end])) {
			at = i + 1
			continue
		}
		b.WriteString(s[from:i])
		b.WriteString("xxxxx")
		from, at = end, end
	}
	b.WriteString(s[from:])
	return b.String()
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// OutcomeUnknown marks err as sslconn.ErrOutcomeUnknown, an *sslconn.Error
// like every error the adapters return. The mark hides err's chain from
// errors.Is and errors.As (its text stays): drivers that re-send a request
// after io.EOF or a timeout (go-redis's cluster client does, whatever
// MaxRetries says; database/sql after driver.ErrBadConn) then report it
// instead.
func OutcomeUnknown(err error) error {
	var se *sslconn.Error
	if errors.As(err, &se) && se.Kind == sslconn.ErrOutcomeUnknown {
		return err
	}
	return &sslconn.Error{Kind: sslconn.ErrOutcomeUnknown, Err: opaque(err.Error())}
}

// opaque is an error's text without its chain.
type opaque string

func (o opaque) Error() string { return string(o) }

// NotSent is the write error for a connection whose server closed it
// (cause, from watch.closed) before the request went out; it matches
// sslconn.ErrNotSent and cause.
func NotSent(conn net.Conn, cause error) error {
	return &net.OpError{Op: "write", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: &notSentError{cause}}
}

type notSentError struct{ cause error }

func (e *notSentError) Error() string   { return sslconn.ErrNotSent.Error() + ": " + e.cause.Error() }
func (e *notSentError) Unwrap() []error { return []error{sslconn.ErrNotSent, e.cause} }

// Explain returns err with its advice renamed for the Config: each setting
// named as the user set it (a DSN parameter, an option function, a command
// flag), and the value the user set named where it is what failed (the
// server name, the CA). Errors whose advice an adapter wrote are returned
// unchanged. Every error a Config's connection attempts return passes
// here; errors made without a Config name DSN parameters.
func (c *Config) Explain(err error) error {
	// Errors are never compared here: a driver's error may be of an
	// uncomparable type (go-mssqldb's mssql.Error holds a slice).
	switch e := err.(type) {
	case *permanentError:
		if se, ok := e.err.(*sslconn.Error); ok {
			if x := rename(se, c.s); x != nil {
				return &permanentError{x}
			}
		}
	case *sslconn.Error:
		if x := rename(e, c.s); x != nil {
			return x
		}
	}
	return err
}

// rename is e with its option, hint and detail rebuilt for s, or nil when
// they are not the library's own (an adapter's advice) or need nothing.
func rename(e *sslconn.Error, s *settings) *sslconn.Error {
	build := func(s *settings, cert bool) *sslconn.Error {
		b := *e
		if cert {
			b.Detail = ""
		}
		var n *isettings.Sources
		if s != nil {
			n = &s.Sources
		}
		advise(&b, n)
		if cert && e.Err != nil {
			explainCert(&b, e.Err, s)
			explainVersion(&b, e.Err, s)
		}
		return &b
	}
	var out *sslconn.Error
	for _, cert := range []bool{true, false} {
		if d := build(nil, cert); d.Option == e.Option && d.Hint == e.Hint && d.Detail == e.Detail {
			if r := build(s, cert); r.Option != e.Option || r.Hint != e.Hint || r.Detail != e.Detail {
				out = r
			}
			break
		}
	}
	// ErrUnavailable keeps the last attempt's error, which may be typed.
	if inner, ok := e.Err.(*sslconn.Error); ok {
		if x := rename(inner, s); x != nil {
			if out == nil {
				cp := *e
				out = &cp
			}
			out.Err = x
		}
	}
	return out
}
