package sslconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/sslconn/sslconn/internal/bridge"
)

// engine exposes to the adapters' shared engine (internal/core) what Config
// keeps from users: per-mode TLS configs, limits, the clock and the hooks.
type engine struct{ c *Config }

func (e engine) TLSConfig(mode Mode, host string) *tls.Config { return e.c.tlsConfig(mode, host) }

// VerifyChain judges a chain as a handshake in mode would; the error is
// crypto/x509's.
func (e engine) VerifyChain(mode Mode, host string, chain []*x509.Certificate) error {
	if mode < VerifyCA {
		return nil
	}
	return e.c.verifier(mode, e.c.nameFor(host))(tls.ConnectionState{PeerCertificates: chain})
}

func (e engine) HandshakeTimeout() time.Duration { return e.c.handshakeTimeout }
func (e engine) RetryBudget() time.Duration      { return e.c.retryBudget }
func (e engine) RetryBudgetSet() bool            { return e.c.budgetSet }
func (e engine) Delay(attempt int) time.Duration { return e.c.backoff.jittered(attempt) }
func (e engine) Now() time.Time                  { return e.c.clock.now() }
func (e engine) Sleep(ctx context.Context, d time.Duration) error {
	return e.c.clock.sleep(ctx, d)
}
func (e engine) Logger() *slog.Logger { return e.c.log }
func (e engine) OnRetry(ev RetryEvent) {
	if e.c.onRetry != nil {
		e.c.onRetry(ev)
	}
}
func (e engine) HasClientCert() bool { return e.c.clientCert != nil }
func (e engine) ExplicitMode() Mode  { return e.c.explicit }
func (e engine) Dialer() DialFunc    { return e.c.dialer }

// NameFor and CASource say what a VERIFY_IDENTITY handshake checks, for
// the sslconn command's report.
func (e engine) NameFor(host string) string { return e.c.nameFor(host) }
func (e engine) CASource() string {
	if e.c.ca == nil {
		return ""
	}
	return e.c.ca.describe()
}

// options are the Options only adapters and tests set.
type options struct{}

// DefaultMode is the mode the driver's own TLS setting maps to.
func (options) DefaultMode(m Mode) Option { return func(s *settings) { s.defaultMode = m } }

// Observer sees every handshake's state, before verification.
func (options) Observer(f func(host string, cs tls.ConnectionState)) Option {
	return func(s *settings) { s.observe = f }
}

// RootPool trusts a certificate pool taken from a driver's tls.Config
// (RootCAs), where no CA file or bytes are given.
func (options) RootPool(p *x509.CertPool) Option { return func(s *settings) { s.rootPool = p } }

// Clock replaces time for the retry tests.
func (options) Clock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(s *settings) { s.clock = &clock{now: now, sleep: sleep} }
}

func init() {
	bridge.Engine = func(c any) any { return engine{c.(*Config)} }
	bridge.Options = options{}
	bridge.ReadCerts = func(path, password string) ([]*x509.Certificate, error) {
		data, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		certs, _, err := parseCA(data, password, 0)
		return certs, err
	}
}
