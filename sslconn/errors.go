package sslconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"strings"
)

// The error vocabulary shared by every adapter. Errors returned by this module
// match these with errors.Is, whatever the engine, and keep the original error
// (x509, crypto/tls, net, the driver's) in the chain for errors.As.
var (
	// ErrServerNoTLS: the mode needs TLS and the server offers none.
	ErrServerNoTLS = errors.New("server does not offer TLS")
	// ErrServerRequiresTLS: the mode is DISABLED and the server (or the user's
	// account) accepts only encrypted connections.
	ErrServerRequiresTLS = errors.New("server requires TLS")
	// ErrUnknownAuthority: the server's chain does not lead to the given CA.
	ErrUnknownAuthority = errors.New("server certificate signed by unknown authority")
	// ErrHostnameMismatch: the certificate is not for the host connected to.
	ErrHostnameMismatch = errors.New("server certificate does not match host name")
	// ErrCertExpired: a certificate in the chain is expired or not yet valid.
	ErrCertExpired = errors.New("server certificate expired or not yet valid")
	// ErrTLSVersion: client and server share no TLS version or cipher suite.
	ErrTLSVersion = errors.New("no TLS version or cipher suite in common with the server")
	// ErrClientCertRequired: the server asked for a client certificate (mutual
	// TLS) and none was given, or it rejected the one given.
	ErrClientCertRequired = errors.New("server requires a client certificate")
	// ErrHandshakeTimeout: the server accepted the connection but did not
	// complete the protocol's handshake and login within the handshake
	// timeout. Retried like a refused connection: a restarting server can
	// be slow to greet.
	ErrHandshakeTimeout = errors.New("server did not complete the handshake in time")
	// ErrBadCA: the CA input is empty, truncated, of an unknown format, holds no
	// certificate, or its password is wrong.
	ErrBadCA = errors.New("invalid CA input")
	// ErrInvalidOption: an option or DSN parameter has a value that cannot work.
	ErrInvalidOption = errors.New("invalid option")
)

// Error is the error type of this module. Kind is one of the sentinels above.
// Its message names the mode, the host and the option that would change the
// outcome; it never holds a password.
type Error struct {
	Kind   error  // sentinel: ErrUnknownAuthority, ...
	Mode   Mode   // mode in force, if known
	Host   string // host (and port) connected to, if known
	Option string // the option that would change the outcome, e.g. "ssl-ca"
	Detail string // what happened, in words
	Hint   string // what to do, naming Option
	Err    error  // underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sslconn: ")
	if e.Mode != 0 || e.Host != "" {
		if e.Mode != 0 {
			b.WriteString(e.Mode.String())
		}
		if e.Host != "" {
			if e.Mode != 0 {
				b.WriteString(" ")
			}
			b.WriteString("connection to ")
			b.WriteString(e.Host)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	switch {
	case e.Hint != "":
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	case e.Option != "":
		b.WriteString(" (option ")
		b.WriteString(e.Option)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel and the underlying error, so errors.Is matches
// the sentinel and errors.As reaches x509 and net errors.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// hints name the option that changes the outcome, per kind.
var hints = map[error]struct{ option, hint string }{
	ErrServerNoTLS:        {"ssl-mode", "enable SSL on the instance, or use ssl-mode=PREFERRED to fall back to plaintext"},
	ErrServerRequiresTLS:  {"ssl-mode", "the instance forces SSL: use ssl-mode=REQUIRED or stronger"},
	ErrUnknownAuthority:   {"ssl-ca", "set ssl-ca to the instance's CA chain (e.g. ApsaraDB-CA-Chain.pem), or use ssl-mode=REQUIRED to encrypt without verifying"},
	ErrHostnameMismatch:   {"ssl-server-name", "connect by the name in the certificate, set ssl-server-name to it, or use ssl-mode=VERIFY_CA to check the chain only"},
	ErrCertExpired:        {"ssl-mode", "renew the server certificate (check the machine's clock), or use ssl-mode=REQUIRED to encrypt without verifying"},
	ErrTLSVersion:         {"tls-version", "legacy instances need an explicit tls-version (e.g. TLSv1,TLSv1.1,TLSv1.2) and perhaps ssl-cipher"},
	ErrClientCertRequired: {"ssl-cert", "set ssl-cert and ssl-key to a client certificate the server's CA signed"},
	ErrHandshakeTimeout:   {"WithHandshakeTimeout", "check that the address is the database's port and reachable without a stalling proxy; sslconn.WithHandshakeTimeout sets the bound"},
}

func newError(kind error, mode Mode, host string, err error) *Error {
	h := hints[kind]
	return &Error{Kind: kind, Mode: mode, Host: host, Option: h.option, Hint: h.hint, Err: err}
}

// NewError returns an *Error of the given kind with the standard hint, for
// adapters that detect a condition themselves (e.g. MySQL's missing CLIENT_SSL).
func NewError(kind error, mode Mode, host, detail string, err error) *Error {
	e := newError(kind, mode, host, err)
	e.Detail = detail
	return e
}

// Classify maps a raw crypto/tls, x509 or network error from a connection
// attempt onto the sentinels, keeping the original in the chain. It returns
// err unchanged when it recognises nothing, and fills in Mode and Host of an
// *Error that lacks them.
func Classify(err error, mode Mode, host string) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		if se.Mode == 0 {
			se.Mode = mode
		}
		if se.Host == "" {
			se.Host = host
		}
		return err
	}
	if kind := kindOf(err); kind != nil {
		return newError(kind, mode, host, err)
	}
	return err
}

func kindOf(err error) error {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		ope *net.OpError
	)
	switch {
	case errors.As(err, &ua):
		return ErrUnknownAuthority
	case errors.As(err, &he):
		return ErrHostnameMismatch
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return ErrCertExpired
		case x509.NotAuthorizedToSign, x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
			return ErrUnknownAuthority
		}
		return nil
	case errors.As(err, &rh):
		// The server answered a ClientHello with something that is not TLS.
		return ErrServerNoTLS
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
			return ErrTLSVersion
		}
	}
	if strings.Contains(msg, "remote error: tls: certificate required") {
		return ErrClientCertRequired
	}
	return nil
}

// alertKind maps TLS alert codes (RFC 8446 §6) the server sends.
func alertKind(code uint8) error {
	switch code {
	case 40, 70, 71: // handshake_failure, protocol_version, insufficient_security
		return ErrTLSVersion
	case 42, 116: // bad_certificate (TLS 1.2 without a client cert), certificate_required
		return ErrClientCertRequired
	}
	return nil
}

// permanentKinds are outcomes that retrying cannot change.
var permanentKinds = []error{
	ErrUnknownAuthority, ErrHostnameMismatch, ErrCertExpired, ErrTLSVersion,
	ErrClientCertRequired, ErrBadCA, ErrInvalidOption, ErrServerRequiresTLS,
	ErrServerNoTLS,
}

// IsPermanent reports whether retrying cannot help: certificate and
// configuration errors, and errors marked with Permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A host name that does not exist (a typo, a deleted instance) does not
	// come back by waiting; a DNS timeout or server failure might.
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return true
	}
	for _, k := range permanentKinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return kindOf(err) != nil
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

// Redact returns err with every non-empty secret replaced by "xxxxx" in its
// text, keeping the chain for errors.Is and errors.As. Adapters pass DSN
// passwords through it, so no error they return contains one.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redacted{err: err, msg: msg}
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
