// Package settings holds a Config's settings as one plain struct: package
// sslconn's options write its fields, sslconn.New completes them, and the
// engine (internal/core) reads them as they are. A new option is one field
// here, one option in sslconn, and whatever reads it; "go to definition"
// from any of them lands on the field.
package settings

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Settings is what a Config was given, completed by sslconn.New: its
// defaults filled in and its TLS functions set. sslconn.Option is a
// func(*Settings).
//
// The type parameters are always package sslconn's Mode, RetryEvent and
// ExpiryWarning: this package cannot name them, as sslconn imports it.
type Settings[Mode ~int, RetryEvent, ExpiryWarning any] struct {
	// Set by sslconn's options; defaults are filled in by New.

	Mode              Mode // WithMode, ssl-mode: the explicit mode; 0: none
	CAFile            string
	CABytes           []byte
	CAPassword        string
	CertFile, KeyFile string
	KeyPassword       string
	// ClientCert is WithClientCertificate's; after New, the client
	// certificate in use (also when loaded from CertFile and KeyFile), or nil.
	ClientCert       *tls.Certificate
	ServerName       string
	MinVersion       uint16
	MaxVersion       uint16
	CipherSuites     []uint16
	RetryBudget      time.Duration                   // negative: retrying is off
	Delay            func(attempt int) time.Duration // WithBackoff's delays, with jitter
	OnRetry          func(RetryEvent)                // may be nil
	Logger           *slog.Logger
	ExpiryWindow     time.Duration
	OnExpiry         func(ExpiryWarning) // may be nil
	Sessions         tls.ClientSessionCache
	SessionsSet      bool // WithSessionCache was given (nil turns resumption off)
	HandshakeTimeout time.Duration
	// Dialer is WithDialer's dial, or nil: each engine then chooses (a
	// driver's own dialer, else a net.Dialer).
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialerScope is shared by the Configs made with one WithDialer
	// option: what the engine learns of addresses dialed that way.
	DialerScope *Scope
	SystemRoots bool // WithSystemRoots
	// DeadPeer is WithDeadPeerTimeout's bound, or the default after New;
	// negative: detection is off.
	DeadPeer time.Duration
	// Meters and Tracers are WithMeterProvider's and WithTracerProvider's;
	// nil: OpenTelemetry's global providers.
	Meters  metric.MeterProvider
	Tracers trace.TracerProvider
	// Sources says where each setting above came from, so that errors name
	// it as the user set it.
	Sources Sources

	// Set by the engine's options (internal/core), never by users.

	DefaultMode Mode                                      // the mode the driver's own TLS setting maps to
	Observe     func(host string, cs tls.ConnectionState) // sees every handshake, before verification
	RootPool    *x509.CertPool                            // a driver's tls.Config's RootCAs
	Clock       Clock                                     // zero: the real one
	Engine      string                                    // db.system.name for telemetry: "mysql", "redis", ...
	// SeeCerts is given the certificates the Config checks for expiry (the
	// CA at New, each verified server chain), whatever the window.
	SeeCerts func(source, host string, certs []*x509.Certificate)
	// Keep, when set, is given the Config's own Settings at the end of a
	// successful sslconn.New: how the engine reads a Config it makes.
	Keep func(*Settings[Mode, RetryEvent, ExpiryWarning])

	// Set by New.

	RetryBudgetSet bool // WithRetryBudget was given
	// TLSConfig is the tls.Config for host in mode (nil for DISABLED), as
	// the Config's TLSConfig makes it for its own mode.
	TLSConfig func(mode Mode, host string) *tls.Config
	// VerifyChain judges a chain (leaf first) as a handshake in mode would;
	// the error is crypto/x509's.
	VerifyChain func(mode Mode, host string, chain []*x509.Certificate) error
	// NameFor is the name VERIFY_IDENTITY checks for host ("host" or
	// "host:port"): the server-name override, else the host.
	NameFor func(host string) string
	// CASource names the CA chains are verified against: its file, the
	// driver's RootCAs or a count of certificates; "" for the system roots.
	CASource string
	// CACerts are the CA's certificates now (a CA file is re-read when it
	// changes); nil for the system roots and a driver's RootCAs.
	CACerts func() []*x509.Certificate
}

// Clock is time for the retry loop and certificate checks, injectable so
// that retry tests run without sleeping.
type Clock struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Scope holds one value, made on first use, for everything that shares
// the Scope.
type Scope struct {
	once sync.Once
	v    any
}

// Get returns the Scope's value, made by make if it is the first call.
func (s *Scope) Get(make func() any) any {
	s.once.Do(func() { s.v = make() })
	return s.v
}
