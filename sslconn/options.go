package sslconn

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	isettings "github.com/sslconn/sslconn/internal/settings"
)

// Option configures a Config. Options are applied in order, so a later one
// wins; adapters apply the DSN's ssl-* parameters first and the caller's
// options after them. Invalid values are reported by New (or the adapter's
// constructor), not here.
type Option func(*settings)

// settings are a Config's settings (see internal/settings): the options
// write them, New completes them, and the adapters' engine reads them.
type settings = isettings.Settings[Mode, RetryEvent, ExpiryWarning]

// WithMode sets the SSL mode explicitly (the ssl-mode parameter does the
// same). It wins over the CA-implies-VERIFY_CA rule and refines the
// driver's own TLS setting; contradicting that setting (TLS off and a mode
// that encrypts, TLS on and DISABLED, verification off and VERIFY_*) is an
// ErrInvalidOption error.
func WithMode(m Mode) Option {
	return func(s *settings) { s.Mode = m; s.Sources.Set(isettings.Mode) }
}

// WithCAFile names a CA file in any format ParseCAChain reads. The file is
// re-read when it changes, so a rotated CA takes effect on the next
// connection without a restart. The CA replaces the system roots.
func WithCAFile(path string) Option {
	return func(s *settings) { s.CAFile, s.CABytes = path, nil; s.Sources.Set(isettings.CA) }
}

// WithSystemRoots trusts the system's roots as well as the CA given with
// WithCAFile or WithCA (the ssl-ca-system=include parameter does the same;
// Connector/J calls it fallbackToSystemTrustStore). Use it while a provider
// moves its instances from one CA to another (RDS, Azure and Atlas have):
// a certificate from either CA verifies. Without a CA it changes nothing:
// the system roots are the default.
func WithSystemRoots() Option {
	return func(s *settings) { s.SystemRoots = true; s.Sources.Set(isettings.CASystem) }
}

// WithCA gives the CA as bytes in any format ParseCAChain reads, e.g. from a
// secrets manager.
func WithCA(data []byte) Option {
	return func(s *settings) { s.CABytes, s.CAFile = data, ""; s.Sources.Set(isettings.CAData) }
}

// WithCAPassword sets the password of a JKS or PKCS#12 CA file. Empty means
// DefaultJKSPassword ("apsaradb").
func WithCAPassword(pw string) Option {
	return func(s *settings) { s.CAPassword = pw; s.Sources.Set(isettings.CAPassword) }
}

// WithClientCertFiles sets a client certificate and key, PEM files, for
// mutual TLS (a MySQL user created REQUIRE X509, Redis tls-auth-clients yes).
// Either may be empty here if another option or parameter gives it; New
// reports a certificate without its key.
func WithClientCertFiles(certFile, keyFile string) Option {
	return func(s *settings) {
		if certFile != "" {
			s.CertFile = certFile
		}
		if keyFile != "" {
			s.KeyFile = keyFile
		}
		s.ClientCert = nil
		s.Sources.Set(isettings.Cert)
	}
}

// WithClientKeyPassword decrypts an encrypted client key (PKCS#8
// "ENCRYPTED PRIVATE KEY", as openssl pkey -aes256 writes it, or the older
// PEM encryption of openssl rsa -aes256 -traditional). It never appears in
// errors, logs or String.
func WithClientKeyPassword(pw string) Option {
	return func(s *settings) { s.KeyPassword = pw; s.Sources.Set(isettings.KeyPassword) }
}

// WithClientCertificate sets a loaded client certificate for mutual TLS.
func WithClientCertificate(c tls.Certificate) Option {
	return func(s *settings) { s.ClientCert, s.CertFile, s.KeyFile = &c, "", ""; s.Sources.Set(isettings.Cert) }
}

// WithServerName overrides the name VERIFY_IDENTITY checks and SNI sends:
// for an endpoint reached by IP, through a proxy, or cluster nodes announced by IP.
func WithServerName(name string) Option {
	return func(s *settings) { s.ServerName = name; s.Sources.Set(isettings.ServerName) }
}

// WithTLSVersions sets the lowest and highest TLS version (tls.VersionTLS10
// ...). The default minimum is TLS 1.2; legacy instances need an explicit 1.0
// or 1.1. Zero leaves a bound at its default.
//
// A minimum below TLS 1.2 says "legacy server": unless WithCipherSuites
// (ssl-cipher) is given, the client then also offers the legacy suites Go
// still implements but leaves out of its defaults, RSA key exchange with
// AES (TLS_RSA_WITH_AES_128/256_CBC_SHA, TLS_RSA_WITH_AES_128_GCM_SHA256,
// TLS_RSA_WITH_AES_256_GCM_SHA384) and 3DES (TLS_RSA_WITH_3DES_EDE_CBC_SHA,
// TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA), which older MySQL 5.6/5.7 builds
// and instances with ssl_cipher=ALL:@SECLEVEL=0 may need.
func WithTLSVersions(minVersion, maxVersion uint16) Option {
	return func(s *settings) {
		s.MinVersion, s.MaxVersion = minVersion, maxVersion
		s.Sources.Set(isettings.TLSVersion)
	}
}

// WithCipherSuites restricts TLS 1.0-1.2 cipher suites (crypto/tls IDs), for
// instances that need the older RSA key-exchange suites. TLS 1.3 suites are
// not configurable in Go.
func WithCipherSuites(ids ...uint16) Option {
	ids = append([]uint16(nil), ids...)
	return func(s *settings) { s.CipherSuites = ids; s.Sources.Set(isettings.Cipher) }
}

// WithRetryBudget bounds how long new connections are retried while the
// server is down or restarting. Without it the budget is 3 minutes for an
// address that has answered before, and 30 seconds for one that has not
// answered since the client was made (a typo in the host or port should
// show in seconds); with it, every address gets the budget given (a service
// that may start before its database). Zero or less disables retrying.
func WithRetryBudget(d time.Duration) Option {
	if d <= 0 {
		d = -1
	}
	// d is settled before the closure: an Option may be applied by many
	// goroutines at once.
	return func(s *settings) { s.RetryBudget = d; s.Sources.Set(isettings.RetryBudget) }
}

// WithBackoff sets the retry delays; zero fields keep their defaults.
func WithBackoff(b Backoff) Option {
	delay := b.withDefaults().jittered
	return func(s *settings) { s.Delay = delay }
}

// WithRetryCallback is called before every retry with the attempt, the delay
// and the cause, e.g. to count reconnects in metrics (WithMeterProvider
// counts them in OpenTelemetry's, as sslconn.retries).
func WithRetryCallback(f func(RetryEvent)) Option { return func(s *settings) { s.OnRetry = f } }

// WithLogger sets the logger for retries, expiry warnings and mode warnings
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.Logger = l } }

// WithExpiryWarning calls f once per certificate (CA or server) that expires
// within window (zero means the default, 30 days); such certificates are
// also logged. f may be nil to change only the window.
func WithExpiryWarning(window time.Duration, f func(ExpiryWarning)) Option {
	return func(s *settings) { s.ExpiryWindow, s.OnExpiry = window, f }
}

// WithSessionCache sets the TLS session cache the Config's connections
// share (default: a new LRU cache per Config, so reconnects resume their
// sessions where the server allows it); nil turns resumption off.
func WithSessionCache(c tls.ClientSessionCache) Option {
	return func(s *settings) { s.Sessions, s.SessionsSet = c, true }
}

// WithHandshakeTimeout bounds one TLS handshake and the protocol's greeting
// and login (default 10 s), so a server that accepts and then stalls cannot
// hold a connection attempt.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(s *settings) { s.HandshakeTimeout = d; s.Sources.Set(isettings.HandshakeTimeout) }
}

// WithDeadPeerTimeout bounds how long an operation waits on a server that
// went silent (a lost host, a failover behind a load balancer: packets
// dropped, nothing answered, nothing reset) before its connection is ended:
// a request that went out then fails with ErrOutcomeUnknown and is never
// re-sent, one that did not is ErrNotSent and retried on a new connection,
// and idle pooled connections to that server are dropped. Default 10 s;
// zero or less turns it off. A server that is only slow (a long query, a
// blocking pop) still acknowledges at the TCP level and is never cut.
// DSN: dead-peer-timeout=10s (or off).
func WithDeadPeerTimeout(d time.Duration) Option {
	if d <= 0 {
		d = -1
	}
	return func(s *settings) { s.DeadPeer = d; s.Sources.Set(isettings.DeadPeer) }
}

// DialFunc makes one plain TCP connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WithDialer sets how the TCP connection under every connection is made:
// through an SSH bastion, a SOCKS proxy or a PrivateLink endpoint. Every
// adapter uses it for every connection it opens, MySQL and SQL Server
// included; TLS, when the mode asks for it, runs on top. Default: a
// net.Dialer.
//
// Clients made with the same WithDialer option (one value, given to each)
// share what is learnt of the addresses they dial, as clients of the
// default dialer do: a server's restart is watched once for all of them.
func WithDialer(d DialFunc) Option {
	scope := new(isettings.Scope)
	return func(s *settings) { s.Dialer, s.DialerScope = d, scope }
}

// WithMeterProvider sets where the Config's OpenTelemetry metrics go
// (default: otel's global provider, which records nothing until one is
// set): connection set-up time (db.client.connection.create_time), and,
// under sslconn., connections by mode, outcome and TLS version, PREFERRED
// connections that went plaintext, retries, recoveries, dead peers and the
// seconds left on each certificate. See docs/telemetry.md.
func WithMeterProvider(p metric.MeterProvider) Option { return func(s *settings) { s.Meters = p } }

// WithTracerProvider sets where the Config's OpenTelemetry spans go
// (default: otel's global provider): a span per new connection, with its
// attempts and handshakes, under the span of the context it was made with.
// No attribute carries a password, a DSN or a certificate.
func WithTracerProvider(p trace.TracerProvider) Option { return func(s *settings) { s.Tracers = p } }
