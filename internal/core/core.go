// Package core is the engine behind the adapters and the sslconn command:
// the one resolver of DSN parameters and driver TLS settings onto a mode,
// dialing with PREFERRED's per-connection fallback, retrying with typed
// errors, classification of crypto/tls, x509 and network errors, and the
// closed-peer check. Users see none of it; they see package sslconn.
package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"time"

	"github.com/sslconn/sslconn/internal/bridge"
	"github.com/sslconn/sslconn/sslconn"
)

// engine is what package sslconn exposes to this package (see bridge).
type engine interface {
	TLSConfig(mode sslconn.Mode, host string) *tls.Config
	VerifyChain(mode sslconn.Mode, host string, chain []*x509.Certificate) error
	HandshakeTimeout() time.Duration
	RetryBudget() time.Duration
	RetryBudgetSet() bool
	Delay(attempt int) time.Duration
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
	Logger() *slog.Logger
	OnRetry(sslconn.RetryEvent)
	HasClientCert() bool
	ExplicitMode() sslconn.Mode
	Dialer() sslconn.DialFunc
	NameFor(host string) string
	CASource() string
}

type optionMaker interface {
	DefaultMode(sslconn.Mode) sslconn.Option
	Observer(func(host string, cs tls.ConnectionState)) sslconn.Option
	Clock(now func() time.Time, sleep func(context.Context, time.Duration) error) sslconn.Option
	RootPool(*x509.CertPool) sslconn.Option
}

var options = bridge.Options.(optionMaker)

// WithDefaultMode sets the mode the driver's own TLS setting maps to.
func WithDefaultMode(m sslconn.Mode) sslconn.Option { return options.DefaultMode(m) }

// WithObserver calls f after every TLS handshake, in every mode and before
// verification (the sslconn command reports chains that a mode rejects).
func WithObserver(f func(host string, cs tls.ConnectionState)) sslconn.Option {
	return options.Observer(f)
}

// NativeTLS reads a *tls.Config a user set on a driver's config (nil: the
// driver says nothing) the one way every adapter does: TLS on, verified
// (VERIFY_IDENTITY) unless InsecureSkipVerify (REQUIRED); its RootCAs, first
// certificate, ServerName, versions and cipher suites become options. A
// config with its own VerifyPeerCertificate, VerifyConnection or
// GetClientCertificate is ErrInvalidOption: the library verifies and picks
// the certificate itself, and a check the user wrote must not vanish
// silently. setting names the field for errors ("TLSConfig").
func NativeTLS(tc *tls.Config, setting string) (Native, error) {
	if tc == nil {
		return Native{}, nil
	}
	switch {
	case tc.VerifyPeerCertificate != nil, tc.VerifyConnection != nil:
		return Native{}, InvalidOption(setting, "a *tls.Config with its own VerifyPeerCertificate or VerifyConnection cannot be honoured: give the CA in RootCAs (or ssl-ca) and use VERIFY_CA or VERIFY_IDENTITY", nil)
	case tc.GetClientCertificate != nil:
		return Native{}, InvalidOption(setting, "a *tls.Config with GetClientCertificate cannot be honoured: put the client certificate in Certificates (or ssl-cert and ssl-key)", nil)
	}
	n := Native{Mode: sslconn.VerifyIdentity, Setting: setting + " (a *tls.Config)"}
	if tc.InsecureSkipVerify {
		n.Mode, n.Setting = sslconn.Required, n.Setting+" with InsecureSkipVerify"
	}
	if tc.RootCAs != nil {
		n.Options = append(n.Options, options.RootPool(tc.RootCAs))
	}
	if len(tc.Certificates) > 0 {
		n.Options = append(n.Options, sslconn.WithClientCertificate(tc.Certificates[0]))
	}
	if tc.ServerName != "" {
		n.Options = append(n.Options, sslconn.WithServerName(tc.ServerName))
	}
	if tc.MinVersion != 0 || tc.MaxVersion != 0 {
		n.Options = append(n.Options, sslconn.WithTLSVersions(tc.MinVersion, tc.MaxVersion))
	}
	if len(tc.CipherSuites) > 0 {
		n.Options = append(n.Options, sslconn.WithCipherSuites(tc.CipherSuites...))
	}
	return n, nil
}

// WithClock replaces time, for tests of retrying.
func WithClock(now func() time.Time, sleep func(context.Context, time.Duration) error) sslconn.Option {
	return options.Clock(now, sleep)
}

// Config is a *sslconn.Config with the engine's view of it. It is safe for
// concurrent use and meant to live as long as the client or pool it serves.
type Config struct {
	*sslconn.Config
	e engine
	// answered records addresses that have completed a connection, so that
	// an address that never has is not retried for the whole budget.
	answered answeredSet
	// plain: addresses where PREFERRED found plaintext only; probe: the
	// engine's plaintext question, if it has one.
	plain plainAddrs
	probe PlainProbe
	// accepts watches addresses that refused, for the retry loop.
	accepts acceptWatches
}

// Wrap gives the engine's view of cfg.
func Wrap(cfg *sslconn.Config) *Config {
	return &Config{Config: cfg, e: bridge.Engine(cfg).(engine)}
}

// New is sslconn.New, wrapped.
func New(opts ...sslconn.Option) (*Config, error) {
	cfg, err := sslconn.New(opts...)
	if err != nil {
		return nil, err
	}
	return Wrap(cfg), nil
}

// TLSConfigMode is the tls.Config for a mode other than the configured one
// (PREFERRED's probe, REQUIRED's check that a port speaks TLS).
func (c *Config) TLSConfigMode(mode sslconn.Mode, host string) *tls.Config {
	return c.e.TLSConfig(mode, host)
}

// HandshakeTimeout bounds one TLS handshake, and each adapter's greeting and login.
func (c *Config) HandshakeTimeout() time.Duration { return c.e.HandshakeTimeout() }

// RetryBudget is how long new connections are retried; negative: not at all.
func (c *Config) RetryBudget() time.Duration { return c.e.RetryBudget() }

// Logger is the configured logger.
func (c *Config) Logger() *slog.Logger { return c.e.Logger() }

// Dialer is the TCP dial for every connection: WithDialer's, else a
// net.Dialer with a connect timeout and keep-alives.
func (c *Config) Dialer() DialFunc {
	if d := c.e.Dialer(); d != nil {
		return d
	}
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}

// UserDialer is WithDialer's dial, or nil.
func (c *Config) UserDialer() DialFunc { return c.e.Dialer() }

// ExplicitMode is the mode set by WithMode or ssl-mode, or 0.
func (c *Config) ExplicitMode() sslconn.Mode { return c.e.ExplicitMode() }

// NameFor is the name VERIFY_IDENTITY checks for host ("host" or
// "host:port"): the server-name override, else the host.
func (c *Config) NameFor(host string) string { return c.e.NameFor(host) }

// CASource names the CA chains are verified against: its file, the
// driver's RootCAs or a count of certificates; "" for the system roots.
func (c *Config) CASource() string { return c.e.CASource() }

// VerifyChain judges a chain (leaf first) exactly as a handshake in mode
// would, with the same typed errors.
func (c *Config) VerifyChain(mode sslconn.Mode, host string, chain []*x509.Certificate) error {
	return Classify(c.e.VerifyChain(mode, host, chain), mode, host)
}

// Modes lists every mode, weakest first.
var Modes = []sslconn.Mode{sslconn.Disabled, sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity}
