package sslconn

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The error vocabulary shared by every adapter. Every error the adapters
// return for a connection attempt matches one of these with errors.Is,
// whatever the engine, and keeps the original error (x509, crypto/tls, net,
// the driver's) in the chain for errors.As.
var (
	// ErrServerNoTLS: the mode needs TLS and the server offers none.
	ErrServerNoTLS = errors.New("server does not offer TLS")
	// ErrServerRequiresTLS: the mode is DISABLED and the server (or the user's
	// account) accepts only encrypted connections. MySQL also: on a
	// connection without TLS, the login would have sent the password (the
	// cleartext plugin after a PREFERRED fallback) or fetched the server's
	// public key to encrypt it, without the DSN opting in.
	ErrServerRequiresTLS = errors.New("server requires TLS")
	// ErrUnknownAuthority: the server's chain does not lead to the given CA.
	ErrUnknownAuthority = errors.New("server certificate signed by unknown authority")
	// ErrHostnameMismatch: the certificate is not for the host connected to.
	ErrHostnameMismatch = errors.New("server certificate does not match host name")
	// ErrCertExpired: a certificate in the chain is expired or not yet valid.
	ErrCertExpired = errors.New("server certificate expired or not yet valid")
	// ErrBadCertificate: the server's certificate cannot be used whatever
	// the CA: its key usage does not allow a TLS server, it is signed with
	// SHA-1, or it does not parse (a negative serial number). The error
	// says which and how to reissue it.
	ErrBadCertificate = errors.New("server certificate not acceptable")
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
	// ErrUnavailable: the server refused or did not answer until the retry
	// budget or the caller's context ran out. The *Error says how many
	// attempts were made and keeps the last one's cause.
	ErrUnavailable = errors.New("server unavailable")
	// ErrBadCA: the CA input is empty, truncated, of an unknown format, holds no
	// certificate, or its password is wrong.
	ErrBadCA = errors.New("invalid CA input")
	// ErrInvalidOption: an option or DSN parameter has a value that cannot
	// work, contradicts another, or is misspelled.
	ErrInvalidOption = errors.New("invalid option")
	// ErrNotSent: a request was not sent because the server had already
	// closed the connection (a restart); retrying it cannot apply anything
	// twice. The adapters retry such requests themselves.
	ErrNotSent = errors.New("connection closed by the server; request not sent")
	// ErrOutcomeUnknown: a request was sent on a connection that then failed
	// (end of stream, reset, read timeout) before the answer came. The
	// server may or may not have executed it, so it is reported, never
	// re-sent silently.
	ErrOutcomeUnknown = errors.New("connection lost after the request was sent; outcome unknown")
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
	Err    error  // underlying error (for ErrUnavailable, the last attempt's), if any

	// Attempts and Elapsed are set for ErrUnavailable: how many connection
	// attempts were made, over how long.
	Attempts int
	Elapsed  time.Duration
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
	if e.Attempts > 0 {
		fmt.Fprintf(&b, " after %d attempt(s) in %s", e.Attempts, e.Elapsed.Round(time.Millisecond))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		if e.Attempts > 0 {
			b.WriteString("; last error: ")
		} else {
			b.WriteString(": ")
		}
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

func invalidOption(option, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalidOption, Option: option, Detail: fmt.Sprintf(format, args...)}
}
