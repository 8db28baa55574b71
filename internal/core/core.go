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
	"net"
	"slices"
	"time"

	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/sslconn"
)

// settings are a Config's settings as package sslconn completed them (see
// internal/settings): the engine reads them as they are, and its own
// options write them.
type settings = isettings.Settings[sslconn.Mode, sslconn.RetryEvent, sslconn.ExpiryWarning]

// withEngine names the engine for telemetry (db.system.name).
func withEngine(name string) sslconn.Option { return func(s *settings) { s.Engine = name } }

// withDefaultMode sets the mode the driver's own TLS setting maps to.
func withDefaultMode(m sslconn.Mode) sslconn.Option { return func(s *settings) { s.DefaultMode = m } }

// via has the options after it record src as their settings' source.
func via(src isettings.Source) sslconn.Option { return func(s *settings) { s.Sources.Via = src } }

// WithFlags has the options after it record that the sslconn command's
// flags set them, and errors name every setting by its flag in names, else
// by its DSN parameter, else not at all.
func WithFlags(names map[isettings.Knob]string) sslconn.Option {
	return func(s *settings) { s.Sources.Via, s.Sources.Flags = isettings.Flag, names }
}

// WithObserver calls f after every TLS handshake, in every mode and before
// verification (the sslconn command reports chains that a mode rejects).
func WithObserver(f func(host string, cs tls.ConnectionState)) sslconn.Option {
	return func(s *settings) { s.Observe = f }
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
		n.Options = append(n.Options, func(s *settings) { s.RootPool = tc.RootCAs })
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

// Config is a *sslconn.Config with the engine's view of it. It is safe for
// concurrent use and meant to live as long as the client or pool it serves.
type Config struct {
	*sslconn.Config
	s *settings // the Config's own, as sslconn.New completed them
	// answered records addresses that have completed a connection, so that
	// an address that never has is not retried for the whole budget.
	answered answeredSet
	// own: what the Config learnt of addresses it dials in ways no other
	// Config does (see knowledgeOf); probe: the engine's plaintext
	// question, if it has one.
	own   knowledge
	probe func(ctx context.Context, conn net.Conn) error
	tel   *telemetry // nil: none (benchmarks' baseline)
}

// newConfig is sslconn.New, with the engine's view of the Config.
func newConfig(opts ...sslconn.Option) (*Config, error) {
	c := &Config{}
	keep := func(s *settings) {
		c.tel = newTelemetry(s)
		s.SeeCerts = c.tel.seeCerts
		s.Keep = func(s *settings) { c.s = s }
	}
	cfg, err := sslconn.New(append(slices.Clip(opts), keep)...)
	if err != nil {
		return nil, err
	}
	c.Config = cfg
	return c, nil
}

// Settings are the Config's settings as sslconn.New completed them:
// timeouts, the retry budget, the explicit mode, WithDialer's dial, the
// tls.Config for any mode. Read them; never write them: the Config is
// shared by every connection it makes.
func (c *Config) Settings() *isettings.Settings[sslconn.Mode, sslconn.RetryEvent, sslconn.ExpiryWarning] {
	return c.s
}

// Dialer is the TCP dial for every connection: WithDialer's, else a
// net.Dialer with a connect timeout and keep-alives.
func (c *Config) Dialer() sslconn.DialFunc {
	if d := c.s.Dialer; d != nil {
		return d
	}
	// A netDialer's, so that PREFERRED's knowledge of an address is shared
	// by every client of the process that dials it this way (process).
	return (&netDialer{net.Dialer{Timeout: c.connectTimeout(), KeepAlive: 30 * time.Second}}).dial
}

// VerifyChain judges a chain (leaf first) exactly as a handshake in mode
// would, with the same typed errors.
func (c *Config) VerifyChain(mode sslconn.Mode, host string, chain []*x509.Certificate) error {
	return c.Explain(Classify(c.s.VerifyChain(mode, host, chain), mode, host))
}

// Modes lists every mode, weakest first.
var Modes = []sslconn.Mode{sslconn.Disabled, sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity}
