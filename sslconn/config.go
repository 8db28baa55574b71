package sslconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/sslconn/sslconn/internal/bridge"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/internal/tlsinfo"
)

// Defaults, as documented on the options.
const (
	defaultRetryBudget      = 3 * time.Minute
	defaultExpiryWindow     = 30 * 24 * time.Hour
	defaultHandshakeTimeout = 10 * time.Second
	defaultDeadPeer         = 10 * time.Second
)

// Config is the validated, immutable result of the options: the one place
// that decides modes and builds tls.Configs. It is safe for concurrent use and
// meant to live as long as the client or pool it serves, so the session cache
// and the CA file check are shared by all its connections.
type Config struct {
	// s is the options, completed by New. A pointer: %#v of a Config then
	// prints its address, not the passwords it holds.
	s           *settings
	mode        Mode         // the mode in force
	ca          *caSource    // nil: the system roots
	systemRoots *systemRoots // WithSystemRoots: the CA joins the system roots
	reported    sync.Map     // certificate fingerprint -> struct{}: expiry reported once
}

// New validates the options and returns a Config. Errors match ErrBadCA or
// ErrInvalidOption and name the option at fault.
func New(opts ...Option) (*Config, error) {
	s := &settings{}
	c := &Config{s: s}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.RetryBudgetSet = s.RetryBudget != 0
	c.systemRoots = newSystemRoots(s.SystemRoots)
	if s.Clock.Now == nil || s.Clock.Sleep == nil {
		s.Clock = realClock
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.RetryBudget == 0 {
		s.RetryBudget = defaultRetryBudget
	}
	if s.Delay == nil {
		s.Delay = Backoff{}.withDefaults().jittered
	}
	if s.ExpiryWindow == 0 {
		s.ExpiryWindow = defaultExpiryWindow
	}
	if !s.SessionsSet {
		s.Sessions = tls.NewLRUClientSessionCache(0)
	}
	if s.HandshakeTimeout <= 0 {
		s.HandshakeTimeout = defaultHandshakeTimeout
	}
	if s.DeadPeer == 0 {
		s.DeadPeer = defaultDeadPeer
	}
	if s.MinVersion == 0 {
		s.MinVersion = tls.VersionTLS12
	}
	if s.MaxVersion != 0 && s.MaxVersion < s.MinVersion {
		return nil, invalidOption(s.Sources.Name(isettings.TLSVersion), "highest TLS version %s is below the lowest %s", tlsinfo.VersionName(s.MaxVersion), tlsinfo.VersionName(s.MinVersion))
	}
	if s.MinVersion < tls.VersionTLS12 && s.CipherSuites == nil {
		s.CipherSuites = legacySuites
	}
	if (s.Mode != 0 && !s.Mode.valid()) || (s.DefaultMode != 0 && !s.DefaultMode.valid()) {
		return nil, invalidOption(s.Sources.Name(isettings.Mode), "invalid mode %v", s.Mode)
	}

	switch {
	case s.CAFile != "":
		src := &caSource{path: s.CAFile, password: s.CAPassword, names: &s.Sources}
		src.onErr = func(err error) {
			s.Logger.Warn("sslconn: CA file changed but cannot be read; keeping the previous CA", "error", err)
		}
		if _, err := src.pool(s.Clock.Now()); err != nil {
			return nil, err
		}
		c.ca = src
	case len(s.CABytes) > 0:
		certs, err := parseCAChain(s.CABytes, s.CAPassword, &s.Sources)
		if err != nil {
			return nil, err
		}
		c.ca = staticCA(certs)
	case s.RootPool != nil:
		c.ca = &caSource{roots: s.RootPool}
	}

	cert, err := loadClientCert(s)
	if err != nil {
		return nil, err
	}
	s.ClientCert = cert

	// Which mode applies: explicit, else the driver's own setting, else a CA
	// given alone means VERIFY_CA, else PREFERRED (the MySQL default).
	switch {
	case s.Mode != 0:
		c.mode = s.Mode
	case s.DefaultMode != 0:
		c.mode = s.DefaultMode
	case c.ca != nil:
		c.mode = VerifyCA
	default:
		c.mode = Preferred
	}
	if c.ca != nil && (c.mode == Required || c.mode == Preferred) {
		s.Logger.Warn("sslconn: a CA is set but the mode does not verify certificates; use VERIFY_CA or VERIFY_IDENTITY to use it",
			"mode", c.mode.String())
	}
	if c.ca != nil {
		c.checkExpiry("ca", "", c.ca.current())
	}
	s.TLSConfig, s.VerifyChain, s.NameFor = c.tlsConfig, c.verifyChain, c.nameFor
	if c.ca != nil {
		s.CASource = c.ca.describe()
		if c.ca.certs != nil || c.ca.path != "" {
			s.CACerts = c.ca.current
		}
	}
	if s.Keep != nil {
		s.Keep(s)
	}
	return c, nil
}

func loadClientCert(s *settings) (*tls.Certificate, error) {
	switch {
	case s.ClientCert != nil:
		return s.ClientCert, nil
	case s.CertFile == "" && s.KeyFile == "":
		return nil, nil
	case s.CertFile == "" || s.KeyFile == "":
		return nil, invalidOption(s.Sources.Name(isettings.Cert), "a client certificate and its key must be given together")
	}
	certPEM, err := os.ReadFile(s.CertFile)
	var keyPEM []byte
	if err == nil {
		keyPEM, err = os.ReadFile(s.KeyFile)
	}
	if err != nil {
		return nil, &Error{Kind: ErrInvalidOption, Option: s.Sources.Name(isettings.Cert), Detail: "cannot read client certificate or key", Err: err}
	}
	if keyPEM, err = decryptKey(keyPEM, s.KeyPassword, s.Sources.Name(isettings.KeyPassword)); err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidOption, Option: s.Sources.Name(isettings.Cert), Detail: "cannot load client certificate and key", Err: err}
	}
	return &c, nil
}

// decryptKey returns keyPEM with its private key decrypted, or unchanged
// when it is not encrypted; option names the password's setting.
func decryptKey(keyPEM []byte, password, option string) ([]byte, error) {
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
			return nil, &Error{Kind: ErrInvalidOption, Option: option, Detail: "the client key is encrypted; give its password"}
		}
		var der []byte
		if legacy {
			//lint:ignore SA1019 see above
			d, err := x509.DecryptPEMBlock(b, []byte(password))
			if err != nil {
				return nil, &Error{Kind: ErrInvalidOption, Option: option, Detail: "cannot decrypt the client key: wrong password or damaged key"}
			}
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: d})...)
			continue
		}
		key, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(password))
		if err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(key)
		}
		if err != nil {
			return nil, &Error{Kind: ErrInvalidOption, Option: option, Detail: "cannot decrypt the client key: wrong password or damaged key"}
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	if !encrypted {
		return keyPEM, nil
	}
	return out, nil
}

// Mode returns the mode in force after the precedence rules: WithMode (or
// ssl-mode), else the driver's own TLS setting, else VERIFY_CA when a CA is
// given, else PREFERRED.
func (c *Config) Mode() Mode { return c.mode }

// String describes the configuration without secrets, for logs.
func (c *Config) String() string {
	ca := "system roots"
	if c.ca != nil {
		ca = c.ca.describe()
	}
	return fmt.Sprintf("sslconn.Config{mode=%s ca=%s server-name=%q tls=%s-%s client-cert=%t}",
		c.mode, ca, c.s.ServerName, tlsinfo.VersionName(c.s.MinVersion), tlsinfo.VersionName(c.s.MaxVersion), c.s.ClientCert != nil)
}

// TLSConfig returns a tls.Config for one server, addressed as "host" or
// "host:port", in the configured mode, or nil for DISABLED: for a driver the
// adapters do not cover. PREFERRED and REQUIRED check no certificate;
// VERIFY_CA checks the chain against the CA in VerifyConnection (which also
// runs on resumed sessions), with the certificates after the first as
// intermediates; VERIFY_IDENTITY also checks the host name, or the
// server-name override, and matches the Common Name only when the
// certificate has no SAN at all. A PREFERRED fallback to plaintext is the
// caller's to make: only when the server offers no TLS at all.
func (c *Config) TLSConfig(host string) *tls.Config {
	return c.tlsConfig(c.mode, host)
}

func (c *Config) tlsConfig(mode Mode, host string) *tls.Config {
	if mode == Disabled {
		return nil
	}
	name := c.nameFor(host)
	tc := &tls.Config{
		// crypto/tls's own check cannot do VERIFY_CA, the CN fallback or a
		// CA file that changes, so every mode verifies in VerifyConnection.
		InsecureSkipVerify: true, //nolint:gosec // verified below per mode
		MinVersion:         c.s.MinVersion,
		MaxVersion:         c.s.MaxVersion,
		CipherSuites:       c.s.CipherSuites,
		ClientSessionCache: c.s.Sessions,
	}
	if net.ParseIP(name) == nil {
		tc.ServerName = name // no SNI for IP literals (RFC 6066 §3)
	}
	cert := c.s.ClientCert
	if cert == nil {
		cert = &tls.Certificate{} // none: the server decides whether that is enough
	}
	// Always send the configured certificate: crypto/tls would send nothing
	// when the server's acceptable-CA list does not name its issuer, and
	// servers then say only "handshake failure". Noting that the server asked
	// lets the handshake tell "client certificate required" from a version
	// mismatch.
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if asked, ok := cri.Context().Value(bridge.CertAskedKey{}).(*atomic.Bool); ok {
			asked.Store(true)
		}
		return cert, nil
	}
	if mode >= VerifyCA {
		tc.VerifyConnection = c.verifier(mode, name)
	}
	if observe, verify := c.s.Observe, tc.VerifyConnection; observe != nil {
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
	if c.s.ServerName != "" {
		return c.s.ServerName
	}
	return tlsinfo.HostOnly(host)
}

// verifyChain judges a chain as a handshake in mode would; the error is
// crypto/x509's.
func (c *Config) verifyChain(mode Mode, host string, chain []*x509.Certificate) error {
	if mode < VerifyCA {
		return nil
	}
	return c.verifier(mode, c.nameFor(host))(tls.ConnectionState{PeerCertificates: chain})
}

// verifier returns crypto/x509's own errors (the adapters classify them),
// so a tls.Config from TLSConfig behaves like any other for its users.
func (c *Config) verifier(mode Mode, name string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return bridge.ErrNoCertificate
		}
		now := c.s.Clock.Now()
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
			opts.Roots = c.systemRoots.with(pool, c.ca.current())
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			if errors.As(err, new(x509.UnknownAuthorityError)) {
				// Kept for the error, which names where the chain ends.
				return &bridge.ChainError{Err: err, Chain: cs.PeerCertificates}
			}
			return err
		}
		if mode == VerifyIdentity {
			if err := tlsinfo.VerifyHostname(leaf, name); err != nil {
				return err
			}
		}
		c.checkExpiry("server", name, cs.PeerCertificates)
		return nil
	}
}

// caSource holds the CA, re-reading a file when its modification time or
// size changes. One stat per handshake is the whole cost when nothing changed.
type caSource struct {
	path, password string
	names          *isettings.Sources // how errors name the settings; nil: DSN parameters

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
	if s.certs == nil {
		return "the driver's RootCAs"
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
		certs, err = readCAChain(s.path, s.password, s.names)
		if err == nil {
			s.certs, s.roots = certs, poolOf(certs)
			s.modTime, s.size = fi.ModTime(), fi.Size()
			return s.roots, nil
		}
	} else {
		n := s.names
		if n == nil {
			n = &isettings.Sources{}
		}
		err = &Error{Kind: ErrBadCA, Option: n.Name(isettings.CA), Detail: "cannot read CA file", Err: err}
	}
	if s.roots != nil {
		if s.onErr != nil {
			s.onErr(err)
		}
		return s.roots, nil
	}
	return nil, err
}

// legacySuites are offered when the lowest TLS version is below 1.2 and no
// suites were given (see WithTLSVersions): Go's defaults, then the legacy
// suites it implements but leaves out of them. RC4 and the CBC-SHA256
// suites (no Lucky13 countermeasures in Go) stay out.
var legacySuites = func() []uint16 {
	var ids []uint16
	for _, cs := range tls.CipherSuites() {
		if slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			ids = append(ids, cs.ID)
		}
	}
	return append(ids,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA)
}()

// systemRoots is the system's roots joined with the CA's certificates,
// rebuilt only when the CA file's pool changes.
type systemRoots struct {
	mu   sync.Mutex
	from *x509.CertPool // the CA pool the joined one was built from
	pool *x509.CertPool
}

func newSystemRoots(on bool) *systemRoots {
	if !on {
		return nil
	}
	return &systemRoots{}
}

// with returns the pool to verify against: ca alone when r is nil.
func (r *systemRoots) with(ca *x509.CertPool, certs []*x509.Certificate) *x509.CertPool {
	if r == nil {
		return ca
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.from == ca && r.pool != nil {
		return r.pool
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	r.from, r.pool = ca, pool
	return pool
}
