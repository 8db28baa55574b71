package core

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"strings"

	"github.com/sslconn/sslconn/internal/bridge"
	"github.com/sslconn/sslconn/sslconn"
)

// kind is everything the library knows about one sentinel: the name
// reports use (the Go identifier), the option that changes the outcome, the advice, and whether
// retrying can help.
type kind struct {
	name, option, hint string
	permanent          bool
}

// kinds is the one table of error kinds.
var kinds = map[error]kind{
	sslconn.ErrServerNoTLS:        {"ErrServerNoTLS", "ssl-mode", "enable SSL on the instance, or use ssl-mode=PREFERRED to fall back to plaintext", true},
	sslconn.ErrServerRequiresTLS:  {"ErrServerRequiresTLS", "ssl-mode", "the instance forces SSL: use ssl-mode=REQUIRED or stronger", true},
	sslconn.ErrUnknownAuthority:   {"ErrUnknownAuthority", "ssl-ca", "set ssl-ca to the instance's CA chain (e.g. ApsaraDB-CA-Chain.pem), or use ssl-mode=REQUIRED to encrypt without verifying", true},
	sslconn.ErrHostnameMismatch:   {"ErrHostnameMismatch", "ssl-server-name", "connect by the name in the certificate, set ssl-server-name to it, or use ssl-mode=VERIFY_CA to check the chain only", true},
	sslconn.ErrCertExpired:        {"ErrCertExpired", "ssl-mode", "renew the server certificate (check the machine's clock), or use ssl-mode=REQUIRED to encrypt without verifying", true},
	sslconn.ErrBadCertificate:     {"ErrBadCertificate", "ssl-mode", "reissue the server certificate, or use ssl-mode=REQUIRED to encrypt without verifying", true},
	sslconn.ErrTLSVersion:         {"ErrTLSVersion", "tls-version", "a legacy instance needs an explicit tls-version, e.g. tls-version=TLSv1,TLSv1.1,TLSv1.2 (a lowest version below TLS 1.2 also offers the legacy cipher suites), or an ssl-cipher it offers; sslconn check finds the version that works", true},
	sslconn.ErrClientCertRequired: {"ErrClientCertRequired", "ssl-cert", "set ssl-cert and ssl-key to a client certificate the server's CA signed", true},
	sslconn.ErrHandshakeTimeout:   {"ErrHandshakeTimeout", "WithHandshakeTimeout", "check that the address is the database's port and reachable without a stalling proxy; sslconn.WithHandshakeTimeout sets the bound", false},
	sslconn.ErrUnavailable:        {"ErrUnavailable", "WithRetryBudget", "check that the server is running and the host and port are right; sslconn.WithRetryBudget sets how long to wait", true},
	sslconn.ErrBadCA:              {"ErrBadCA", "ssl-ca", "", true},
	sslconn.ErrInvalidOption:      {"ErrInvalidOption", "", "", true},
	sslconn.ErrNotSent:            {"ErrNotSent", "", "", false},
	sslconn.ErrOutcomeUnknown:     {"ErrOutcomeUnknown", "", "", true},
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
	info := kinds[k]
	return &sslconn.Error{Kind: k, Mode: mode, Host: host, Option: info.option, Hint: info.hint, Detail: detail, Err: err}
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
		explainCert(e, err)
		explainVersion(e, err)
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
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
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
