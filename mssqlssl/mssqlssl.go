package mssqlssl

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// DriverName is the name this package registers with database/sql:
// sql.Open("mssqlssl", dsn) accepts the same DSNs as Open.
const DriverName = "mssqlssl"

func init() {
	sql.Register(DriverName, Driver{})
	core.RegisterResolver("mssql", func(dsn string, opts ...sslconn.Option) (*core.Resolved, error) {
		c, err := NewConnector(dsn, opts...)
		if err != nil {
			return nil, err
		}
		return &core.Resolved{Config: c.ssl, Addrs: []string{c.addr()}}, nil
	})
}

// Driver is the database/sql driver registered as "mssqlssl".
type Driver struct{}

// Open implements driver.Driver; database/sql uses OpenConnector instead.
func (d Driver) Open(dsn string) (driver.Conn, error) {
	c, err := NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector implements driver.DriverContext.
func (d Driver) OpenConnector(dsn string) (driver.Connector, error) { return NewConnector(dsn) }

var _ driver.DriverContext = Driver{}

// Connector is a driver.Connector that connects in the configured SSL mode,
// retrying while the server is down or restarting.
type Connector struct {
	base   msdsn.Config
	ssl    *core.Config
	strict bool // TDS 8: TLS first, ALPN tds/8.0
	pass   string
	// token, when set, logs every new connection in with the access token
	// it returns (FEDAUTH, security token library) instead of a password.
	token func(context.Context) (string, error)
	// recent are the last tokens token returned, kept only to keep them
	// out of the provider's own error texts.
	recent recentTokens
	// life ends with Close: Connects under way stop retrying, later ones
	// fail at once.
	life *core.Lifetime
}

// recentTokens remembers the last few distinct tokens a provider returned.
type recentTokens struct {
	mu     sync.Mutex
	tokens []string
}

const keepTokens = 8

func (r *recentTokens) add(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tokens {
		if t == tok {
			return
		}
	}
	if len(r.tokens) == keepTokens {
		r.tokens = r.tokens[1:]
	}
	r.tokens = append(r.tokens, tok)
}

func (r *recentTokens) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// NewConnector parses a go-mssqldb DSN (sqlserver:// URL, ADO
// "server=...;user id=..." or "odbc:..." string) with the shared ssl-*
// parameters and returns a connector for sql.OpenDB. opts are applied after
// the DSN's parameters, so they win.
func NewConnector(dsn string, opts ...sslconn.Option) (*Connector, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	// The password as the DSN's own syntax holds it, too: the driver may
	// read the DSN another way (a URL-like text it takes for ADO).
	return newConnector(cfg, opts, dsnPassword(dsn))
}

// NewConnectorFromConfig returns a connector for a driver config built in
// code (msdsn.Parse and changes, or a msdsn.Config literal). cfg is copied,
// and what it says keeps its meaning; only TLS is decided by the connector,
// per connection. cfg.Encryption maps onto a mode as encrypt= does in a
// DSN (EncryptionDisabled DISABLED, an encrypt=false that Parse read
// PREFERRED, EncryptionRequired or EncryptionStrict VERIFY_IDENTITY, or
// REQUIRED when TrustServerCertificate is set or the TLSConfig has
// InsecureSkipVerify). A *tls.Config you set in cfg.TLSConfig is read, not
// discarded: its RootCAs, first certificate, ServerName, MinVersion,
// MaxVersion and CipherSuites become the equivalent options, which opts
// override; with Encryption left at its zero value it also selects
// VERIFY_IDENTITY (REQUIRED with InsecureSkipVerify). The TLSConfig that
// msdsn.Parse derives from the DSN's parameters says nothing more than
// those parameters (certificate=, hostNameInCertificate=, tlsmin=,
// TrustServerCertificate=), which are read as in NewConnector, with any
// ssl-* parameters cfg.Parameters holds. A setting that contradicts an
// explicit mode is an ErrInvalidOption naming both.
func NewConnectorFromConfig(cfg msdsn.Config, opts ...sslconn.Option) (*Connector, error) {
	if strings.TrimSpace(cfg.Host) == "" {
		// msdsn.Parse makes an empty server "localhost"; a literal
		// without a Host is a config not filled in.
		return nil, core.InvalidOption("config", "the msdsn.Config has no Host", nil)
	}
	return newConnector(copyConfig(cfg), opts)
}

// NewAccessTokenConnector is NewConnector for Microsoft Entra ID (Azure AD)
// access tokens, like go-mssqldb's own mssql.NewAccessTokenConnector: every
// new connection calls token with the connection's context and logs in with
// the token it returns (federated authentication, security token library),
// inside TLS in the DSN's mode. A user id or password in the DSN is not
// used. When token fails (or returns an empty token), Connect returns a
// *TokenError holding its error and does not retry: the next connection
// asks again. The token appears in no error, log or printed value.
//
// The token travels inside the TLS session: use VERIFY_IDENTITY (the
// default with encrypt=true); in DISABLED, and in PREFERRED with a server
// offering no TLS, it would be sent in plaintext.
func NewAccessTokenConnector(dsn string, token func(context.Context) (string, error), opts ...sslconn.Option) (*Connector, error) {
	if token == nil {
		return nil, core.InvalidOption("token", "the access token provider is nil", nil)
	}
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	c.token = token
	return c, nil
}

// TokenError is the error of an access token provider (see
// NewAccessTokenConnector), as Connect returns it: the connection was not
// logged in, and it is not retried. Err is the provider's error; the tokens
// the provider last returned are replaced in its text.
type TokenError struct {
	Err error
}

func (e *TokenError) Error() string {
	return "mssqlssl: the access token provider failed: " + e.Err.Error()
}

// Unwrap returns the provider's error.
func (e *TokenError) Unwrap() error { return e.Err }

// errEmptyToken is the TokenError of a provider that returned "" and no error.
var errEmptyToken = errors.New("it returned an empty token")

// errTokenProvider is what the driver sees of a provider's failure: the
// connector reports the provider's own error as a *TokenError.
var errTokenProvider = errors.New("mssqlssl: the access token provider failed")

// splitHostComma reads server=host,port (and tcp:host,port) in odbc: DSNs
// as go-mssqldb's ADO parser does: its odbc: parser keeps the whole value
// as the host name, which then fails DNS on every retry.
func splitHostComma(cfg *msdsn.Config) {
	h, p, ok := strings.Cut(strings.TrimPrefix(cfg.Host, "tcp:"), ",")
	if !ok {
		return
	}
	if port, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16); err == nil {
		cfg.Host, cfg.Port = strings.TrimSpace(h), port
	}
}

// Open returns a *sql.DB for the DSN; see NewConnector.
func Open(dsn string, opts ...sslconn.Option) (*sql.DB, error) {
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// parseDSN is go-mssqldb's msdsn.Parse, its password kept out of errors.
// The TLSConfig Parse derives from the DSN's parameters is dropped:
// newConnector reads the parameters themselves.
func parseDSN(dsn string) (msdsn.Config, error) {
	if err := param.CheckLength(dsn); err != nil {
		return msdsn.Config{}, err
	}
	cfg, err := msdsn.Parse(dsn)
	if err != nil {
		return msdsn.Config{}, core.Redact(core.InvalidOption("dsn", "invalid SQL Server DSN", err), cfg.Password, dsnPassword(dsn))
	}
	cfg.TLSConfig = nil
	return cfg, nil
}

// copyConfig copies a caller's config deeply enough that neither side's
// later changes reach the other, and gives a literal the defaults Parse
// would have: the TCP protocol, maps to write to.
func copyConfig(cfg msdsn.Config) msdsn.Config {
	c := cfg
	if cfg.TLSConfig != nil {
		c.TLSConfig = cfg.TLSConfig.Clone()
	}
	if cfg.Parameters != nil {
		c.Parameters = make(map[string]string, len(cfg.Parameters))
		for k, v := range cfg.Parameters {
			c.Parameters[k] = v
		}
	}
	c.ProtocolParameters = make(map[string]interface{}, len(cfg.ProtocolParameters))
	for k, v := range cfg.ProtocolParameters {
		c.ProtocolParameters[k] = v
	}
	c.Protocols = append([]string(nil), cfg.Protocols...)
	if len(c.Protocols) == 0 {
		c.Protocols = []string{"tcp"}
	}
	c.ActivityID = append([]byte(nil), cfg.ActivityID...)
	return c
}

// newConnector is the one path behind NewConnector and
// NewConnectorFromConfig: cfg is the connector's own copy.
func newConnector(cfg msdsn.Config, opts []sslconn.Option, moreSecrets ...string) (*Connector, error) {
	secrets := append([]string{cfg.Password, cfg.ChangePassword, cfg.Parameters[msdsn.Password]}, moreSecrets...)
	native, strict, err := nativeSettings(cfg)
	if err != nil {
		return nil, core.Redact(err, secrets...)
	}
	splitHostComma(&cfg)
	params := url.Values{}
	var keys []string
	for k, v := range cfg.Parameters {
		if param.Is(k) {
			params.Set(k, v)
		} else {
			keys = append(keys, k)
		}
	}
	if err := param.CheckUnknown(keys, func(k string) bool { return strings.EqualFold(k, "tlsmin") }); err != nil {
		return nil, core.Redact(err, secrets...)
	}
	ssl, err := core.Resolve(core.Spec{Native: native, Params: params, Secrets: secrets}, opts...)
	if err != nil {
		return nil, err
	}
	if strict && ssl.Mode() < sslconn.Required {
		return nil, core.InvalidOption("encrypt", fmt.Sprintf("%s (TDS 8) always encrypts; it cannot be %s", encryptionSetting(cfg), ssl.Mode()), nil)
	}
	return &Connector{base: cfg, ssl: ssl, strict: strict, pass: cfg.Password, life: core.NewLifetime()}, nil
}

// dsnPassword finds the password in a DSN the driver could not parse, to
// keep it out of the error: the URL's userinfo, or an ADO/ODBC
// password= or pwd= value.
func dsnPassword(dsn string) string {
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				if u, err := url.PathUnescape(pw); err == nil {
					return u
				}
				return pw
			}
		}
		return ""
	}
	for _, kv := range strings.Split(strings.TrimPrefix(dsn, "odbc:"), ";") {
		k, v, _ := strings.Cut(kv, "=")
		if k = strings.ToLower(strings.TrimSpace(k)); k == "password" || k == "pwd" {
			return strings.Trim(strings.TrimSpace(v), "{}")
		}
	}
	return ""
}

// parseBool reads a boolean parameter as go-mssqldb does (yes and no too).
func parseBool(v string) (bool, error) {
	switch {
	case strings.EqualFold(v, "yes"):
		return true, nil
	case strings.EqualFold(v, "no"):
		return false, nil
	}
	return strconv.ParseBool(v)
}

// parsedEncryption is the Encryption msdsn.Parse reads from encrypt=v.
func parsedEncryption(v string) (msdsn.Encryption, bool) {
	switch strings.ToLower(v) {
	case "mandatory", "yes", "1", "t", "true":
		return msdsn.EncryptionRequired, true
	case "disable":
		return msdsn.EncryptionDisabled, true
	case "strict":
		return msdsn.EncryptionStrict, true
	case "optional", "no", "0", "f", "false":
		return msdsn.EncryptionOff, true
	}
	return 0, false
}

// encryptionSetting names cfg.Encryption as the user wrote it: encrypt=v
// when the DSN's parameter says so, else the Go constant.
func encryptionSetting(cfg msdsn.Config) string {
	if v, ok := cfg.Parameters[msdsn.Encrypt]; ok {
		if e, ok := parsedEncryption(v); ok && e == cfg.Encryption {
			return "encrypt=" + v
		}
	}
	switch cfg.Encryption {
	case msdsn.EncryptionOff:
		return "Encryption=msdsn.EncryptionOff"
	case msdsn.EncryptionRequired:
		return "Encryption=msdsn.EncryptionRequired"
	case msdsn.EncryptionDisabled:
		return "Encryption=msdsn.EncryptionDisabled"
	case msdsn.EncryptionStrict:
		return "Encryption=msdsn.EncryptionStrict"
	}
	return fmt.Sprintf("Encryption=%d", cfg.Encryption)
}

// parsedTrust is the TrustServerCertificate msdsn.Parse derives from the
// parameters: true without encrypt=, false with encrypt=strict, else the
// parameter's value. ok is false when the parameter is not a boolean.
func parsedTrust(p map[string]string) (trust, ok bool) {
	_, hasEncrypt := p[msdsn.Encrypt]
	trust = !hasEncrypt
	if v, has := p[msdsn.TrustServerCertificate]; has {
		var err error
		if trust, err = parseBool(v); err != nil {
			return false, false
		}
	}
	if strings.EqualFold(p[msdsn.Encrypt], "strict") {
		trust = false
	}
	return trust, true
}

// derivedTLS reports whether cfg.TLSConfig is the one msdsn.Parse built
// from cfg.Parameters (certificate=, hostNameInCertificate=, tlsmin=,
// TrustServerCertificate=), which say all it says, rather than one the
// user set or changed.
func derivedTLS(cfg msdsn.Config) bool {
	tc, p := cfg.TLSConfig, cfg.Parameters
	if tc == nil || p == nil || cfg.Encryption == msdsn.EncryptionDisabled {
		return false
	}
	trust, ok := parsedTrust(p)
	if !ok {
		return false
	}
	host, ok := p[msdsn.HostNameInCertificate]
	if !ok {
		host = cfg.Host
	}
	want, err := msdsn.SetupTLS(p[msdsn.Certificate], p[msdsn.ServerCertificate], trust, host, p[msdsn.TLSMin])
	if err != nil {
		return false
	}
	sameRoots := (want.RootCAs == nil && tc.RootCAs == nil) ||
		(want.RootCAs != nil && tc.RootCAs != nil && want.RootCAs.Equal(tc.RootCAs))
	return sameRoots && tc.ServerName == want.ServerName && tc.InsecureSkipVerify == want.InsecureSkipVerify &&
		tc.MinVersion == want.MinVersion && tc.MaxVersion == 0 && len(tc.Certificates) == 0 &&
		tc.GetClientCertificate == nil && len(tc.CipherSuites) == 0 && tc.VerifyConnection == nil &&
		(tc.VerifyPeerCertificate == nil) == (want.VerifyPeerCertificate == nil)
}

// nativeSettings maps go-mssqldb's own settings onto a mode and options:
// cfg.Encryption (encrypt=), TrustServerCertificate, the TLSConfig the user
// set, and certificate=, hostNameInCertificate= and tlsmin=. encrypt=false,
// which encrypts only the login packet, becomes PREFERRED: the whole
// session encrypted when the server supports it.
func nativeSettings(cfg msdsn.Config) (n core.Native, strict bool, err error) {
	p := cfg.Parameters
	var tc *tls.Config // the user's, to read
	if cfg.TLSConfig != nil && !derivedTLS(cfg) {
		tc = cfg.TLSConfig
	}
	// Verification off: the DSN's TrustServerCertificate=, or, set in
	// code, the TrustServerCertificate field (Parse sets it to true for a
	// DSN without encrypt=, which does not count) or the user's TLSConfig's
	// InsecureSkipVerify.
	paramTrust := ""
	if v, ok := p[msdsn.TrustServerCertificate]; ok {
		if t, err := parseBool(v); err == nil && t {
			paramTrust = "TrustServerCertificate=" + v
		}
	}
	userTrust := ""
	if def, ok := parsedTrust(p); cfg.TrustServerCertificate && (p == nil || !ok || !def) {
		userTrust = "TrustServerCertificate=true"
	} else if tc != nil && tc.InsecureSkipVerify {
		userTrust = "TLSConfig.InsecureSkipVerify"
	}
	switch cfg.Encryption {
	case msdsn.EncryptionDisabled:
		n.Mode, n.Setting = sslconn.Disabled, encryptionSetting(cfg)
	case msdsn.EncryptionOff:
		_, hasEncrypt := p[msdsn.Encrypt]
		switch {
		case hasEncrypt:
			// encrypt=false: login-only encryption, whatever the trust.
			n.Mode, n.Setting = sslconn.Preferred, encryptionSetting(cfg)
		case userTrust != "":
			// Encryption left unset in code: encrypt, unverified.
			n.Mode, n.Setting = sslconn.Required, userTrust
		case tc != nil:
			n.Mode, n.Setting = sslconn.VerifyIdentity, "TLSConfig (a *tls.Config)"
		}
	case msdsn.EncryptionRequired, msdsn.EncryptionStrict:
		n.Mode, n.Setting = sslconn.VerifyIdentity, encryptionSetting(cfg)
		switch {
		case paramTrust != "" && strings.HasPrefix(n.Setting, "encrypt="):
			n.Mode, n.Setting = sslconn.Required, n.Setting+"&"+paramTrust
		case paramTrust != "":
			n.Mode, n.Setting = sslconn.Required, n.Setting+" with "+paramTrust
		case userTrust != "":
			n.Mode, n.Setting = sslconn.Required, n.Setting+" with "+userTrust
		}
		strict = cfg.Encryption == msdsn.EncryptionStrict
	default:
		return n, false, core.InvalidOption("encrypt", fmt.Sprintf("%s is not one of go-mssqldb's Encryption values", encryptionSetting(cfg)), nil)
	}
	if p[msdsn.ServerCertificate] != "" {
		return n, false, core.InvalidOption("serverCertificate", "pinning one server certificate is not supported; give its CA with ssl-ca and use VERIFY_CA or VERIFY_IDENTITY", nil)
	}
	if f := p[msdsn.Certificate]; f != "" && (tc == nil || tc.RootCAs == nil) {
		n.Options = append(n.Options, sslconn.WithCAFile(f))
	}
	if h := p[msdsn.HostNameInCertificate]; h != "" {
		n.Options = append(n.Options, sslconn.WithServerName(h))
	}
	if v := p[msdsn.TLSMin]; v != "" {
		ver, err := tlsinfo.ParseVersion(v)
		if err != nil {
			return n, false, core.InvalidOption("tlsmin", err.Error(), nil)
		}
		n.Options = append(n.Options, sslconn.WithTLSVersions(ver, 0))
	}
	if tc != nil {
		tn, err := core.NativeTLS(tc, "TLSConfig")
		if err != nil {
			return n, false, err
		}
		n.Options = append(n.Options, tn.Options...)
	}
	return n, strict, nil
}

// Config returns the SSL configuration in force.
func (c *Connector) Config() *sslconn.Config { return c.ssl.Config }

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver { return Driver{} }

// Close implements io.Closer, which database/sql calls when the *sql.DB is
// closed: Connects under way stop, their retries and the attempt in
// progress alike, and later Connects fail at once; both with
// sslconn.ErrUnavailable saying the connector was closed. A Connector
// serves one *sql.DB.
func (c *Connector) Close() error {
	c.life.Close()
	return nil
}

func (c *Connector) addr() string {
	port := c.base.Port
	if port == 0 {
		port = 1433
	}
	return net.JoinHostPort(c.base.Host, strconv.FormatUint(port, 10))
}

// String describes the connector without its password, so that logging
// the connector (with %v, %+v or %#v) cannot leak it.
func (c *Connector) String() string {
	auth := "user=" + c.base.User
	if c.token != nil {
		auth = "auth=access-token"
	}
	return fmt.Sprintf("mssqlssl.Connector{%s addr=%s db=%s strict=%t %s}", auth, c.addr(), c.base.Database, c.strict, c.ssl)
}

// GoString is String, for %#v.
func (c *Connector) GoString() string { return c.String() }

// Connect implements driver.Connector. Close ends it.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.life.Closed() {
		return nil, c.ssl.ClosedError(c.addr(), nil, nil)
	}
	ctx, release := c.life.Bind(ctx)
	defer release()
	var (
		conn   driver.Conn
		tokens []string // the tokens this call's attempts logged in with
		last   error    // the last attempt's, if it was not cut short by ctx
	)
	mode := c.ssl.Mode()
	err := c.ssl.Retry(ctx, c.addr(), func(ctx context.Context) error {
		var err error
		conn, err = c.connectPreferredKnown(ctx, mode, &tokens)
		if conn == nil && err == nil {
			conn, err = c.connectOnce(ctx, mode, &tokens)
			if mode == sslconn.Preferred && errors.Is(err, sslconn.ErrServerNoTLS) {
				// The prelogin answer was ENCRYPT_NOT_SUP: this connection
				// goes plaintext, and so do the next ones without asking
				// again (see connectPreferredKnown).
				c.ssl.LearnPlain(c.addr())
				conn, err = c.connectOnce(ctx, sslconn.Disabled, &tokens)
			}
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err != nil {
		err = c.ssl.Ended(ctx, c.addr(), err, last)
		secrets := append(append([]string{c.pass}, tokens...), c.recent.all()...)
		return nil, core.Redact(err, secrets...)
	}
	return conn, nil
}

// connectPreferredKnown makes a PREFERRED connection in plaintext at once,
// as a bare driver would, when this server answered ENCRYPT_NOT_SUP before:
// asking for encryption again would cost every connection a second one.
// Every 5 s while it connects it asks again, off the request path, whether
// the server encrypts now; a server that has started to force encryption
// says so in its PRELOGIN answer, and this connection and the next ask for
// it; after a failed attempt (a restart) the next one asks. It returns nil, nil when the caller should ask for encryption.
func (c *Connector) connectPreferredKnown(ctx context.Context, mode sslconn.Mode, tokens *[]string) (driver.Conn, error) {
	if mode != sslconn.Preferred {
		return nil, nil
	}
	known, recheck := c.ssl.KnownPlain(c.addr())
	if !known {
		return nil, nil
	}
	conn, err := c.connectOnce(ctx, sslconn.Disabled, tokens)
	if errors.Is(err, sslconn.ErrServerRequiresTLS) {
		c.ssl.ForgetPlain(c.addr())
		return nil, nil
	}
	if err != nil {
		// Down, perhaps restarting with SSL enabled ("enable SSL" restarts
		// the instance): the first connection after it asks again.
		c.ssl.ForgetPlain(c.addr())
	}
	if recheck {
		go c.recheckTLS()
	}
	return conn, err
}

// recheckTLS asks the server whether it encrypts now, with a login
// bounded by the handshake timeout.
func (c *Connector) recheckTLS() {
	ctx, cancel := context.WithTimeout(context.Background(), c.ssl.Settings().HandshakeTimeout)
	defer cancel()
	ctx, release := c.life.Bind(ctx)
	defer release()
	var tokens []string
	conn, err := c.connectOnce(ctx, sslconn.Required, &tokens)
	if conn != nil {
		conn.Close()
	}
	c.ssl.PlainChecked(c.addr(), err == nil || !errors.Is(err, sslconn.ErrServerNoTLS) && core.KindName(err) != "")
}

// attempt observes one connection attempt from the side: the server's
// PRELOGIN answer, the TLS state, and our own verification error, which the
// driver flattens into text.
type attempt struct {
	serverEncrypt atomic.Int32 // -1 until the PRELOGIN answer is seen
	mu            sync.Mutex
	state         *tls.ConnectionState
	verifyErr     error
	tokenErr      error // the token provider's, for a *TokenError
}

func (c *Connector) connectOnce(ctx context.Context, mode sslconn.Mode, tokens *[]string) (driver.Conn, error) {
	a := &attempt{}
	a.serverEncrypt.Store(-1)
	cfg := c.base
	cfg.HostInCertificateProvided = true // keep our ServerName: none for IP literals
	switch {
	case mode == sslconn.Disabled:
		cfg.Encryption, cfg.TLSConfig = msdsn.EncryptionDisabled, nil
	default:
		cfg.Encryption = msdsn.EncryptionRequired
		if c.strict {
			cfg.Encryption = msdsn.EncryptionStrict
		}
		tc := c.ssl.Settings().TLSConfig(mode, c.addr())
		if tc.ServerName == "" {
			// Reached by IP: crypto/tls then keys the session cache by
			// RemoteAddr, which the driver's handshake wrapper returns as
			// nil, and panics. No resumption for IP literals.
			tc.ClientSessionCache = nil
		}
		verify := tc.VerifyConnection
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify != nil {
				if err := verify(cs); err != nil {
					a.mu.Lock()
					a.verifyErr = err
					a.mu.Unlock()
					return err
				}
			}
			a.mu.Lock()
			a.state = &cs
			a.mu.Unlock()
			return nil
		}
		cfg.TLSConfig = tc
	}
	// go-mssqldb may dial every address of the host at once
	// (MultiSubnetFailover, on by default) and keep the first to answer:
	// each dial has its own state, and the survivors are found at the end.
	var (
		dmu    sync.Mutex
		dialed []*sniffConn
	)
	alive := func() (out []*sniffConn) {
		dmu.Lock()
		defer dmu.Unlock()
		for _, r := range dialed {
			if !r.closed.Load() {
				out = append(out, r)
			}
		}
		return out
	}
	conn := mssql.NewConnectorConfig(cfg)
	if c.token != nil {
		// The provider's own time (a round trip to Entra ID) does not
		// count against the server's: the login bound restarts after it.
		resume := func() {
			for _, r := range alive() {
				r.setLoginBy(time.Now().Add(c.ssl.Settings().HandshakeTimeout))
			}
		}
		var err error
		conn, err = mssql.NewSecurityTokenConnector(cfg, c.tokenFor(a, tokens, resume))
		if err != nil {
			return nil, core.Permanent(err)
		}
	}
	dial := dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := c.ssl.Dialer()(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Without "connection timeout" the driver reads PRELOGIN, the TLS
		// handshake and LOGINACK with no deadline: a server that accepts
		// and stalls would hold the caller forever. Bound the login.
		r := &sniffConn{Conn: nc, peer: core.NewPeerCheck(nc), a: a, sniff: !c.strict}
		r.setLoginBy(time.Now().Add(c.ssl.Settings().HandshakeTimeout))
		dmu.Lock()
		dialed = append(dialed, r)
		dmu.Unlock()
		return r, nil
	})
	conn.Dialer = dial
	if c.ssl.Settings().Dialer != nil {
		// sslconn.WithDialer's dial (a bastion, a proxy) resolves the
		// host name in its own network: the driver then passes it on
		// instead of resolving it here.
		conn.Dialer = hostDialer{dial, cfg.Host}
	}
	dc, err := conn.Connect(ctx)
	if err != nil {
		a.mu.Lock()
		tokenFailed := a.tokenErr != nil
		a.mu.Unlock()
		timedOut := false
		dmu.Lock()
		for _, r := range dialed {
			timedOut = timedOut || !time.Now().Before(r.loginBy())
		}
		dmu.Unlock()
		if !tokenFailed && ctx.Err() == nil && timedOut {
			return nil, core.NewError(sslconn.ErrHandshakeTimeout, mode, c.addr(),
				"no PRELOGIN answer, TLS handshake and login within "+c.ssl.Settings().HandshakeTimeout.String(), os.ErrDeadlineExceeded)
		}
		return nil, c.classify(err, mode, a)
	}
	a.mu.Lock()
	st := core.StatusOf(a.state)
	a.mu.Unlock()
	for i, r := range alive() {
		r.setLoginBy(time.Time{}) // logged in: no deadline any more
		if i == 0 {
			r.register(dc, st)
		}
	}
	return dc, nil
}

func (c *Connector) classify(err error, mode sslconn.Mode, a *attempt) error {
	addr := c.addr()
	a.mu.Lock()
	verr, tokenErr := a.verifyErr, a.tokenErr
	a.mu.Unlock()
	server := a.serverEncrypt.Load()
	var me mssql.Error
	switch {
	case tokenErr != nil:
		// The provider's failure: asking again at once rarely helps, and a
		// provider that needs time has its own retries.
		return core.Permanent(&TokenError{Err: tokenErr})
	case verr != nil:
		// go-mssqldb reports handshake errors with %v: use ours, typed.
		return core.Classify(verr, mode, addr)
	case server == encryptNotSup && mode != sslconn.Disabled:
		return core.NewError(sslconn.ErrServerNoTLS, mode, addr, "the server answered PRELOGIN with ENCRYPT_NOT_SUP", err)
	case server == encryptReq && mode == sslconn.Disabled:
		return core.NewError(sslconn.ErrServerRequiresTLS, mode, addr, "the server answered PRELOGIN with ENCRYPT_REQ (force encryption is on)", err)
	case errors.As(err, &me):
		// Login failed, unknown database, ...: retrying cannot help.
		return core.Permanent(core.Classify(err, mode, addr))
	}
	return core.Classify(err, mode, addr)
}

type dialerFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// hostDialer is go-mssqldb's mssql.HostDialer: given one, the driver dials
// host:port by name instead of resolving the name itself.
type hostDialer struct {
	dialerFunc
	host string
}

func (h hostDialer) HostName() string { return h.host }

// tokenFor wraps the user's token provider for one attempt: it records the
// provider's error for classify (the driver sees only errTokenProvider) and
// each token, to keep it out of errors, and calls resume when the provider
// has answered.
func (c *Connector) tokenFor(a *attempt, tokens *[]string, resume func()) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := c.token(ctx)
		resume()
		if err == nil && tok == "" {
			err = errEmptyToken
		}
		if err != nil {
			a.mu.Lock()
			a.tokenErr = core.Redact(err, append(c.recent.all(), tok)...)
			a.mu.Unlock()
			return "", errTokenProvider
		}
		*tokens = append(*tokens, tok)
		c.recent.add(tok)
		return tok, nil
	}
}

// PRELOGIN ENCRYPT values ([MS-TDS] 2.2.6.5).
const (
	encryptNotSup = 2
	encryptReq    = 3
)

// sniffConn reads the server's first TDS packet, the PRELOGIN answer, as it
// passes, to learn its ENCRYPT value; it changes nothing.
type sniffConn struct {
	net.Conn
	peer  *core.PeerCheck
	a     *attempt
	sniff bool
	buf   []byte
	dc    driver.Conn // the driver's connection on top, once logged in

	closed atomic.Bool
	by     atomic.Int64 // login deadline, unix ns; 0: none
}

// setLoginBy sets (or, with the zero time, lifts) the login deadline.
func (s *sniffConn) setLoginBy(t time.Time) {
	if t.IsZero() {
		s.by.Store(0)
	} else {
		s.by.Store(t.UnixNano())
	}
	_ = s.Conn.SetDeadline(t)
}

func (s *sniffConn) loginBy() time.Time {
	if n := s.by.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	s.peer.Received(n)
	if s.sniff && n > 0 {
		s.buf = append(s.buf, p[:n]...)
		if len(s.buf) >= 8 {
			if total := int(binary.BigEndian.Uint16(s.buf[2:4])); len(s.buf) >= total && total >= 8 {
				s.a.serverEncrypt.Store(int32(preloginEncrypt(s.buf[8:total])))
				s.sniff, s.buf = false, nil
			}
		}
	}
	return n, err
}

// Write refuses to write into a connection the server has already closed
// (a restart): the driver then reports a failed send, which database/sql
// retries on a new connection, instead of a statement whose outcome is
// unknown.
func (s *sniffConn) Write(p []byte) (int, error) {
	if err := s.peer.Closed(); err != nil {
		return 0, s.peer.WriteError(s.Conn, err)
	}
	n, err := s.Conn.Write(p)
	s.peer.Sent(n)
	return n, err
}

func preloginEncrypt(b []byte) int {
	for i := 0; i+5 <= len(b) && b[i] != 0xFF; i += 5 {
		if b[i] == 0x01 {
			off := int(binary.BigEndian.Uint16(b[i+1:]))
			if l := int(binary.BigEndian.Uint16(b[i+3:])); l > 0 && off < len(b) {
				return int(b[off])
			}
		}
	}
	return -1
}

// live maps each driver connection (*mssql.Conn) this package made to its
// TLS state, for VerifyConn. It is keyed by the connection itself, not by
// an address, so proxies and NAT do not matter; go-mssqldb does TLS above
// the dialer and exposes neither its net.Conn nor its TLS state.
var live sync.Map // driver.Conn -> sslconn.Status

func (s *sniffConn) register(dc driver.Conn, st sslconn.Status) {
	s.dc = dc
	live.Store(dc, st)
}

func (s *sniffConn) Close() error {
	s.closed.Store(true)
	if s.dc != nil {
		live.Delete(s.dc)
	}
	return s.Conn.Close()
}

// Verify reports the TLS state of one of db's connections; see VerifyConn.
func Verify(ctx context.Context, db *sql.DB) (sslconn.Status, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return sslconn.Status{}, err
	}
	defer conn.Close()
	return VerifyConn(ctx, conn)
}

// VerifyConn asks the server whether the session is encrypted
// (sys.dm_exec_connections.encrypt_option for @@SPID: the server's word) and
// takes the TLS version and cipher from the client's side of the same
// connection.
func VerifyConn(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	var enc string
	err := conn.QueryRowContext(ctx, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&enc)
	if err != nil {
		return sslconn.Status{}, err
	}
	st := sslconn.Status{Encrypted: strings.EqualFold(enc, "TRUE")}
	if !st.Encrypted {
		return st, nil
	}
	err = conn.Raw(func(dc any) error {
		if v, ok := live.Load(dc); ok {
			st = v.(sslconn.Status)
		}
		return nil
	})
	return st, err
}
