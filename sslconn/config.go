package sslconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/youmark/pkcs8"
)

const (
	// DefaultRetryBudget bounds the retrying of new connections.
	DefaultRetryBudget = 3 * time.Minute
	// DefaultExpiryWindow is how long before expiry a certificate is reported.
	DefaultExpiryWindow = 30 * 24 * time.Hour
	// DefaultHandshakeTimeout bounds one TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Config is the validated, immutable result of the options: the one place
// that decides modes and builds tls.Configs. It is safe for concurrent use and
// meant to live as long as the client or pool it serves, so the session cache
// and the CA file check are shared by all its connections.
type Config struct {
	mode             Mode
	ca               *caSource // nil: the system roots
	clientCert       *tls.Certificate
	serverName       string
	minVersion       uint16
	maxVersion       uint16
	cipherSuites     []uint16
	retryBudget      time.Duration
	backoff          Backoff
	onRetry          func(RetryEvent)
	log              *slog.Logger
	onExpiry         func(ExpiryWarning)
	observe          func(host string, cs tls.ConnectionState)
	expiryWindow     time.Duration
	handshakeTimeout time.Duration
	clock            clock
	sessions         tls.ClientSessionCache
	reported         sync.Map // certificate fingerprint -> struct{}: expiry reported once
}

// New validates the options and returns a Config. Errors match ErrBadCA or
// ErrInvalidOption and name the option at fault.
func New(opts ...Option) (*Config, error) {
	var s settings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	if len(s.errs) > 0 {
		return nil, s.errs[0]
	}
	c := &Config{
		serverName:       s.serverName,
		minVersion:       s.minVersion,
		maxVersion:       s.maxVersion,
		cipherSuites:     s.cipherSuites,
		retryBudget:      s.retryBudget,
		backoff:          s.backoff.withDefaults(),
		onRetry:          s.onRetry,
		log:              s.logger,
		onExpiry:         s.onExpiry,
		observe:          s.observe,
		expiryWindow:     s.expiryWindow,
		handshakeTimeout: s.handshakeTimeout,
		clock:            s.clock,
		sessions:         s.sessions,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.retryBudget == 0 {
		c.retryBudget = DefaultRetryBudget
	}
	if c.expiryWindow == 0 {
		c.expiryWindow = DefaultExpiryWindow
	}
	if !s.sessionsSet {
		c.sessions = tls.NewLRUClientSessionCache(0)
	}
	if c.handshakeTimeout <= 0 {
		c.handshakeTimeout = DefaultHandshakeTimeout
	}
	if c.minVersion == 0 {
		c.minVersion = tls.VersionTLS12
	}
	if c.maxVersion != 0 && c.maxVersion < c.minVersion {
		return nil, &Error{Kind: ErrInvalidOption, Option: "tls-version",
			Detail: fmt.Sprintf("highest TLS version %s is below the lowest %s", VersionName(c.maxVersion), VersionName(c.minVersion))}
	}
	if (s.mode != 0 && !s.mode.valid()) || (s.defaultMode != 0 && !s.defaultMode.valid()) {
		return nil, &Error{Kind: ErrInvalidOption, Option: "ssl-mode", Detail: fmt.Sprintf("invalid mode %v", s.mode)}
	}

	switch {
	case s.caFile != "":
		src := &caSource{path: s.caFile, password: s.caPassword}
		src.onErr = func(err error) {
			c.log.Warn("sslconn: CA file changed but cannot be read; keeping the previous CA", "error", err)
		}
		if _, err := src.pool(c.clock.Now()); err != nil {
			return nil, err
		}
		c.ca = src
	case len(s.caBytes) > 0:
		certs, err := ParseCAChain(s.caBytes, s.caPassword)
		if err != nil {
			return nil, err
		}
		c.ca = staticCA(certs)
	}

	cert, err := loadClientCert(&s)
	if err != nil {
		return nil, err
	}
	c.clientCert = cert

	// Which mode applies: explicit, else the driver's own setting, else a CA
	// given alone means VERIFY_CA, else PREFERRED (the MySQL default).
	switch {
	case s.mode != 0:
		c.mode = s.mode
	case s.defaultMode != 0:
		c.mode = s.defaultMode
	case c.ca != nil:
		c.mode = VerifyCA
	default:
		c.mode = Preferred
	}
	if c.ca != nil && (c.mode == Required || c.mode == Preferred) {
		c.log.Warn("sslconn: a CA is set but the mode does not verify certificates; use VERIFY_CA or VERIFY_IDENTITY to use it",
			"mode", c.mode.String())
	}
	if c.ca != nil {
		c.checkExpiry("ca", "", c.ca.current())
	}
	return c, nil
}

func loadClientCert(s *settings) (*tls.Certificate, error) {
	certPEM, keyPEM := s.certPEM, s.keyPEM
	switch {
	case s.clientCert != nil:
		return s.clientCert, nil
	case s.certFile != "" || s.keyFile != "":
		if s.certFile == "" || s.keyFile == "" {
			return nil, &Error{Kind: ErrInvalidOption, Option: "ssl-cert", Detail: "ssl-cert and ssl-key must be given together"}
		}
		var err error
		if certPEM, err = os.ReadFile(s.certFile); err == nil {
			keyPEM, err = os.ReadFile(s.keyFile)
		}
		if err != nil {
			return nil, &Error{Kind: ErrInvalidOption, Option: "ssl-cert", Detail: "cannot read client certificate or key", Err: err}
		}
	case len(certPEM) == 0 && len(keyPEM) == 0:
		return nil, nil
	}
	keyPEM, err := decryptKey(keyPEM, s.keyPassword)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidOption, Option: "ssl-cert", Detail: "cannot load client certificate and key", Err: err}
	}
	return &c, nil
}

// decryptKey returns keyPEM with its private key decrypted, or unchanged
// when it is not encrypted.
func decryptKey(keyPEM []byte, password string) ([]byte, error) {
	var out []byte
	encrypted := false
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		//lint:ignore SA1019 legacy PEM encryption is insecure, but keys made by openssl rsa -aes256 -traditional still use it
		legacy := x509.IsEncryptedPEMBlock(b)
		if b.Type != "ENCRYPTED PRIVATE KEY" && !legacy {
			out = append(out, pem.EncodeToMemory(b)...)
			continue
		}
		encrypted = true
		if password == "" {
			return nil, &Error{Kind: ErrInvalidOption, Option: ParamKeyPassword, Detail: "the client key is encrypted; give its password"}
		}
		var der []byte
		if legacy {
			//lint:ignore SA1019 see above
			d, err := x509.DecryptPEMBlock(b, []byte(password))
			if err != nil {
				return nil, &Error{Kind: ErrInvalidOption, Option: ParamKeyPassword, Detail: "cannot decrypt the client key: wrong password or damaged key"}
			}
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: d})...)
			continue
		}
		key, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(password))
		if err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(key)
		}
		if err != nil {
			return nil, &Error{Kind: ErrInvalidOption, Option: ParamKeyPassword, Detail: "cannot decrypt the client key: wrong password or damaged key"}
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	if !encrypted {
		return keyPEM, nil
	}
	return out, nil
}

// Mode returns the mode in force after the precedence rules.
func (c *Config) Mode() Mode { return c.mode }

// RetryBudget returns how long new connections are retried; negative means not at all.
func (c *Config) RetryBudget() time.Duration { return c.retryBudget }

// HandshakeTimeout returns the bound on one TLS handshake.
func (c *Config) HandshakeTimeout() time.Duration { return c.handshakeTimeout }

// String describes the configuration without secrets, for logs.
func (c *Config) String() string {
	ca := "system roots"
	if c.ca != nil {
		ca = c.ca.describe()
	}
	return fmt.Sprintf("sslconn.Config{mode=%s ca=%s server-name=%q tls=%s-%s client-cert=%t}",
		c.mode, ca, c.serverName, VersionName(c.minVersion), VersionName(c.maxVersion), c.clientCert != nil)
}

// GoString makes %#v print String: the fields hold a CA password.
func (c *Config) GoString() string { return c.String() }

// TLSConfig returns the tls.Config for one server, addressed as "host" or
// "host:port", or nil for DISABLED. PREFERRED and REQUIRED check no
// certificate; VERIFY_CA checks the chain against the CA in
// VerifyConnection (which also runs on resumed sessions), with the
// certificates after the first as intermediates; VERIFY_IDENTITY also checks
// the host name, or the server-name override, and matches the Common Name
// only when the certificate has no SAN at all.
func (c *Config) TLSConfig(host string) *tls.Config {
	return c.TLSConfigMode(c.mode, host)
}

// TLSConfigMode is TLSConfig for a mode other than the configured one (an
// adapter's PREFERRED fallback, its probes).
func (c *Config) TLSConfigMode(mode Mode, host string) *tls.Config {
	if mode == Disabled {
		return nil
	}
	name := c.nameFor(host)
	tc := &tls.Config{
		// crypto/tls's own check cannot do VERIFY_CA, the CN fallback or a
		// CA file that changes, so every mode verifies in VerifyConnection.
		InsecureSkipVerify: true, //nolint:gosec // verified below per mode
		MinVersion:         c.minVersion,
		MaxVersion:         c.maxVersion,
		CipherSuites:       c.cipherSuites,
		ClientSessionCache: c.sessions,
	}
	if net.ParseIP(name) == nil {
		tc.ServerName = name // no SNI for IP literals (RFC 6066 §3)
	}
	cert := c.clientCert
	if cert == nil {
		cert = &tls.Certificate{} // none: the server decides whether that is enough
	}
	// Always send the configured certificate: crypto/tls would send nothing
	// when the server's acceptable-CA list does not name its issuer, and
	// servers then say only "handshake failure". Noting that the server asked
	// lets Handshake tell "client certificate required" from a version mismatch.
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if asked, ok := cri.Context().Value(certAskedKey{}).(*atomic.Bool); ok {
			asked.Store(true)
		}
		return cert, nil
	}
	if mode.Verifies() {
		tc.VerifyConnection = c.verifier(mode, name)
	}
	if observe, verify := c.observe, tc.VerifyConnection; observe != nil {
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			observe(host, cs)
			if verify != nil {
				return verify(cs)
			}
			return nil
		}
	}
	return tc
}

// nameFor is the name VERIFY_IDENTITY checks for host: the server-name
// override, else the host connected to.
func (c *Config) nameFor(host string) string {
	if c.serverName != "" {
		return c.serverName
	}
	return hostOnly(host)
}

// VerifyChain judges a certificate chain as a server sent it (leaf first)
// exactly as a handshake in mode would: VERIFY_CA checks it against the CA,
// VERIFY_IDENTITY also the host name (or the server-name override). Modes
// that verify nothing return nil. The sslconn check command judges the
// chains it reports with it.
func (c *Config) VerifyChain(mode Mode, host string, chain []*x509.Certificate) error {
	if !mode.Verifies() {
		return nil
	}
	return Classify(c.verifier(mode, c.nameFor(host))(tls.ConnectionState{PeerCertificates: chain}), mode, host)
}

// certAskedKey carries, in a handshake's context, a flag set when the server
// asks for a client certificate.
type certAskedKey struct{}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// verifier's errors leave Host empty: the caller's Classify fills in the
// address connected to, port included.
func (c *Config) verifier(mode Mode, name string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return NewError(ErrUnknownAuthority, mode, "", "server sent no certificate", nil)
		}
		now := c.clock.Now()
		opts := x509.VerifyOptions{
			CurrentTime:   now,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if c.ca != nil {
			pool, err := c.ca.pool(now)
			if err != nil {
				return err
			}
			opts.Roots = pool
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			return Classify(err, mode, "")
		}
		if mode == VerifyIdentity {
			if err := VerifyHostname(leaf, name); err != nil {
				return Classify(err, mode, "")
			}
		}
		c.checkExpiry("server", name, cs.PeerCertificates)
		return nil
	}
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// HasSAN reports whether the certificate carries a subjectAltName extension.
func HasSAN(cert *x509.Certificate) bool {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			return true
		}
	}
	return false
}

// VerifyHostname checks the certificate against name as VERIFY_IDENTITY does:
// by its SANs, or, for a certificate with no SAN at all (what
// `openssl req -subj "/CN=host"` makes), by its Common Name, as MySQL's and
// OpenSSL's clients do. The error is an x509.HostnameError.
func VerifyHostname(cert *x509.Certificate, name string) error {
	if HasSAN(cert) {
		return cert.VerifyHostname(name)
	}
	if matchCN(cert.Subject.CommonName, name) {
		return nil
	}
	return x509.HostnameError{Certificate: cert, Host: name}
}

func matchCN(cn, name string) bool {
	cn = strings.TrimSuffix(strings.ToLower(cn), ".")
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if cn == "" || name == "" {
		return false
	}
	if ip := net.ParseIP(name); ip != nil {
		cip := net.ParseIP(cn)
		return cip != nil && cip.Equal(ip)
	}
	if cn == name {
		return true
	}
	// A wildcard covers exactly one leftmost label: *.example.com.
	if rest, ok := strings.CutPrefix(cn, "*."); ok {
		if i := strings.IndexByte(name, '.'); i > 0 {
			return name[i+1:] == rest
		}
	}
	return false
}

// caSource holds the CA, re-reading a file when its modification time or
// size changes. One stat per handshake is the whole cost when nothing changed.
type caSource struct {
	path, password string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	certs   []*x509.Certificate
	roots   *x509.CertPool
	onErr   func(error)
}

func staticCA(certs []*x509.Certificate) *caSource {
	return &caSource{certs: certs, roots: poolOf(certs)}
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func (s *caSource) describe() string {
	if s.path != "" {
		return s.path
	}
	return fmt.Sprintf("%d certificate(s)", len(s.certs))
}

func (s *caSource) current() []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certs
}

// pool returns the current roots. A file that changed but no longer parses
// (half-written during a rotation) keeps the previous roots; the error is
// returned only when there never were any.
func (s *caSource) pool(now time.Time) (*x509.CertPool, error) {
	if s.path == "" {
		return s.roots, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err == nil && s.roots != nil && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return s.roots, nil
	}
	if err == nil {
		var certs []*x509.Certificate
		certs, err = ReadCAChain(s.path, s.password)
		if err == nil {
			s.certs, s.roots = certs, poolOf(certs)
			s.modTime, s.size = fi.ModTime(), fi.Size()
			return s.roots, nil
		}
	} else {
		err = &Error{Kind: ErrBadCA, Option: "ssl-ca", Detail: "cannot read CA file", Err: err}
	}
	if s.roots != nil {
		if s.onErr != nil {
			s.onErr(err)
		}
		return s.roots, nil
	}
	return nil, err
}
