package mysqlssl

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// DriverName is the name this package registers with database/sql:
// sql.Open("mysqlssl", dsn) accepts the same DSNs as Open.
const DriverName = "mysqlssl"

func init() {
	sql.Register(DriverName, Driver{})
	core.RegisterResolver("mysql", func(dsn string, opts ...sslconn.Option) (*core.Resolved, error) {
		c, err := NewConnector(dsn, opts...)
		if err != nil {
			return nil, err
		}
		return &core.Resolved{Config: c.ssl, Addrs: []string{c.cfg.Addr}}, nil
	})
}

// Driver is the database/sql driver registered as "mysqlssl".
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
	cfg  *mysql.Config // the driver's config as given, its TLS decided per connection
	ssl  *core.Config
	pass string // only to keep it out of error texts
	// life ends with Close: Connects under way stop retrying, later ones
	// fail at once.
	life *core.Lifetime
	// rejectRO turns a write refused by a read-only node into a retry on
	// a new connection; roGen counts the writable nodes found after such
	// refusals (see readonly.go).
	rejectRO atomic.Bool
	roGen    atomic.Int64
	roMu     sync.Mutex
	roSearch *writableSearch // the search for a writable node under way
}

// NewConnector parses a go-sql-driver/mysql DSN with the shared ssl-*
// parameters (see the package doc) and returns a connector for sql.OpenDB.
// opts are applied after the DSN's parameters, so they win.
func NewConnector(dsn string, opts ...sslconn.Option) (*Connector, error) {
	cfg, spec, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c, err := newConnector(cfg, spec, opts)
	if err != nil {
		return nil, err
	}
	v, set := dsnParam(dsn, "rejectReadOnly")
	c.initReadOnly(!set || cfg.RejectReadOnly || v == "")
	return c, nil
}

// NewConnectorFromConfig returns a connector for a driver config built in
// code (mysql.NewConfig, or ParseDSN and changes). cfg is copied, and all of
// it keeps working: a BeforeConnect hook set with cfg.Apply runs for every
// new connection and may change it (a fresh password or IAM token per
// connection), and so do DialFunc, Logger, timeouts and the rest. Only TLS
// is decided by the connector, per connection: cfg.TLSConfig ("true",
// "skip-verify", "preferred", "false" or a name registered with
// mysql.RegisterTLSConfig) and cfg.TLS map onto a mode as tls= does in a
// DSN, and a *tls.Config's RootCAs, Certificates, ServerName, MinVersion,
// MaxVersion and CipherSuites become the equivalent options, which opts
// override.
func NewConnectorFromConfig(cfg *mysql.Config, opts ...sslconn.Option) (*Connector, error) {
	if cfg == nil {
		return nil, core.InvalidOption("config", "the *mysql.Config is nil", nil)
	}
	c := cfg.Clone()
	native, err := nativeTLS(c, "TLSConfig=")
	if err != nil {
		return nil, core.Redact(err, c.Passwd)
	}
	c.TLS, c.TLSConfig, c.AllowFallbackToPlaintext = nil, "", false
	conn, err := newConnector(c, core.Spec{Native: native, Secrets: []string{c.Passwd}}, opts)
	if err != nil {
		return nil, err
	}
	conn.initReadOnly(true)
	return conn, nil
}

// nativeTLS reads the TLS settings of a driver config onto a mode and
// options, as the driver itself would use them: a *tls.Config set in code
// first; else cfg.TLSConfig, one of the four names (label says how it was
// written, "tls=" or "TLSConfig=") or a name registered with
// mysql.RegisterTLSConfig. AllowFallbackToPlaintext turns any of them into
// PREFERRED.
func nativeTLS(cfg *mysql.Config, label string) (core.Native, error) {
	var (
		n   core.Native
		err error
	)
	name := strings.ToLower(cfg.TLSConfig)
	switch m, known := nativeModes[name]; {
	case cfg.TLS != nil:
		n, err = core.NativeTLS(cfg.TLS, "TLS")
	case known:
		n = core.Native{Mode: m, Setting: label + cfg.TLSConfig}
	case name != "":
		// A name registered with mysql.RegisterTLSConfig: the driver
		// resolves it when it parses a DSN.
		const probe = "registered.sslconn.invalid"
		reg, perr := mysql.ParseDSN("tcp(" + probe + ":1)/?tls=" + url.QueryEscape(cfg.TLSConfig))
		if perr != nil || reg.TLS == nil {
			return n, core.InvalidOption("tls", fmt.Sprintf("%s%s is not one of false, preferred, skip-verify, true, nor a name registered with mysql.RegisterTLSConfig", label, cfg.TLSConfig), nil)
		}
		if reg.TLS.ServerName == probe {
			reg.TLS.ServerName = "" // the driver's default: the host connected to
		}
		n, err = core.NativeTLS(reg.TLS, label+cfg.TLSConfig)
	}
	if err != nil {
		return n, err
	}
	if cfg.AllowFallbackToPlaintext && n.Mode >= sslconn.Required {
		n.Mode = sslconn.Preferred
		n.Setting += " with allowFallbackToPlaintext"
	}
	return n, nil
}

func newConnector(cfg *mysql.Config, spec core.Spec, opts []sslconn.Option) (*Connector, error) {
	ssl, err := core.Resolve(spec, opts...)
	if err != nil {
		return nil, err
	}
	cfg.CheckConnLiveness = true // drop pooled connections a restart killed
	// Validate now, as the driver would: a bad config is an error here,
	// not at the first connection.
	if _, err := mysql.NewConnector(cfg.Clone()); err != nil {
		return nil, core.Redact(core.InvalidOption("dsn", "invalid DSN", err), cfg.Passwd)
	}
	return &Connector{cfg: cfg, ssl: ssl, pass: cfg.Passwd, life: core.NewLifetime()}, nil
}

// driverConnector is the driver's connector for one new connection, with
// TLS set for mode. Each connection gets its own copy of the config: the
// driver's own PREFERRED sets a shared config's TLS to nil on the first
// fallback, turning the whole pool plaintext, while here the fallback is
// decided per connection. The user's BeforeConnect, kept in the copy, runs
// after this, as the driver calls it. The connection's tls.Config notes
// whether the server asked for a client certificate that was not sent
// (see certAskedConnector).
func (c *Connector) driverConnector(mode sslconn.Mode) (driver.Connector, error) {
	cfg := c.cfg.Clone()
	cfg.TLS = c.ssl.Settings().TLSConfig(mode, cfg.Addr)
	cfg.AllowFallbackToPlaintext = mode == sslconn.Preferred
	if d := c.ssl.Settings().Dialer; d != nil {
		cfg.DialFunc = d
	}
	asked := watchCertRequest(cfg.TLS)
	inner, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return certAskedConnector{inner, asked}, nil
}

// Open returns a *sql.DB for the DSN; see NewConnector.
func Open(dsn string, opts ...sslconn.Option) (*sql.DB, error) {
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// Config returns the SSL configuration in force.
func (c *Connector) Config() *sslconn.Config { return c.ssl.Config }

// String describes the connector without its password, so that logging
// the connector (with %v, %+v or %#v) cannot leak it.
func (c *Connector) String() string {
	return fmt.Sprintf("mysqlssl.Connector{user=%s addr=%s/%s db=%s %s}", c.cfg.User, c.cfg.Net, c.cfg.Addr, c.cfg.DBName, c.ssl)
}

// GoString is String, for %#v.
func (c *Connector) GoString() string { return c.String() }

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

// Connect implements driver.Connector: it connects in the configured mode,
// retrying refused and reset connections within the retry budget, and maps
// failures onto sslconn's errors. Close ends it.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.life.Closed() {
		return nil, c.ssl.ClosedError(c.cfg.Addr, nil, nil)
	}
	ctx, release := c.life.Bind(ctx)
	defer release()
	var (
		conn driver.Conn
		last error // the last attempt's, if it was not cut short by ctx
	)
	// The driver reads the greeting and runs the TLS handshake and login
	// without a deadline unless ctx has one: a server that accepts and then
	// stalls would hold database/sql's Ping or Query forever. Each attempt
	// gets the dial timeout plus the handshake timeout.
	bound := c.ssl.Settings().HandshakeTimeout + c.cfg.Timeout
	err := c.ssl.Retry(ctx, c.cfg.Addr, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		inner, err := c.driverConnector(c.ssl.Mode())
		if err != nil {
			return core.Permanent(err)
		}
		conn, err = inner.Connect(actx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() == nil && actx.Err() != nil:
			err = core.NewError(sslconn.ErrHandshakeTimeout, c.ssl.Mode(), c.cfg.Addr,
				"no greeting, TLS handshake and login within "+bound.String(), os.ErrDeadlineExceeded)
		default:
			err = c.classify(actx, err)
		}
		if ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err != nil {
		err = c.ssl.Ended(ctx, c.cfg.Addr, err, last)
		return nil, core.Redact(err, c.pass)
	}
	return c.wrap(conn), nil
}

// MySQL and MariaDB error numbers the connector interprets.
const (
	erAccessDenied           = 1045
	erConCount               = 1040 // too many connections: retry
	erServerShutdown         = 1053 // shutting down: retry
	erSecureTransportMySQL80 = 3159 // MySQL 8: require_secure_transport
)

func (c *Connector) classify(ctx context.Context, err error) error {
	mode, addr := c.ssl.Mode(), c.cfg.Addr
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, mysql.ErrNoTLS):
		return core.NewError(sslconn.ErrServerNoTLS, mode, addr, "the server's handshake lacks CLIENT_SSL", err)
	case errors.As(err, &me):
		switch me.Number {
		case erConCount, erServerShutdown:
			return err
		case erSecureTransportMySQL80:
			return core.NewError(sslconn.ErrServerRequiresTLS, mode, addr, "", err)
		case erAccessDenied:
			var asked *certAskedError
			if mode != sslconn.Disabled && errors.As(err, &asked) {
				// MariaDB and MySQL refuse an account created REQUIRE X509
				// (or ISSUER, SUBJECT) that sent no certificate with 1045,
				// as they do a wrong password. The server asked for one in
				// this handshake and none went: say so, without a second
				// login to find out, keeping the server's error.
				e := core.NewError(sslconn.ErrClientCertRequired, mode, addr,
					"the server asked for a client certificate and none is configured: the account may require one (REQUIRE X509, ISSUER or SUBJECT), which MariaDB and MySQL report as error 1045, like a wrong password", me)
				e.Hint = "if the account requires a client certificate (SHOW CREATE USER shows REQUIRE), set ssl-cert and ssl-key to one the server's CA signed; otherwise check the user name and password"
				return core.Permanent(e)
			}
			if mode == sslconn.Disabled && c.acceptsTLSLogin(ctx) {
				return core.NewError(sslconn.ErrServerRequiresTLS, mode, addr,
					"the plaintext login was refused but the same login over TLS succeeds: the server (require_secure_transport) or the account (REQUIRE SSL) requires TLS; MariaDB reports both as error 1045, like a wrong password", err)
			}
		}
		// Credentials, unknown database, privileges: retrying cannot help.
		return core.Permanent(core.Classify(err, mode, addr))
	}
	return core.Classify(err, mode, addr)
}

// acceptsTLSLogin tells "requires TLS" from "wrong password" after a 1045 in
// DISABLED: it tries the same login once over TLS, without verifying, and
// reports whether the server accepted it.
func (c *Connector) acceptsTLSLogin(ctx context.Context) bool {
	// The same config in REQUIRED: the user's BeforeConnect runs too, so
	// the login is the one that was refused.
	conn, err := c.driverConnector(sslconn.Required)
	if err != nil {
		return false
	}
	dc, err := conn.Connect(ctx)
	if err != nil {
		return false
	}
	dc.Close()
	return true
}

// watchCertRequest makes tc (one connection's own tls.Config) note when
// the server asks for a client certificate and none is sent: the driver
// runs the handshake without a context, so the flag the library's
// tls.Config sets through the handshake's context cannot reach it.
func watchCertRequest(tc *tls.Config) *atomic.Bool {
	asked := new(atomic.Bool)
	if tc == nil || tc.GetClientCertificate == nil {
		return asked
	}
	get := tc.GetClientCertificate
	tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cert, err := get(cri)
		if err == nil && (cert == nil || len(cert.Certificate) == 0) {
			asked.Store(true)
		}
		return cert, err
	}
	return asked
}

// certAskedConnector is the driver's connector for one connection; its
// error is a *certAskedError when the server asked for a client
// certificate and none was sent.
type certAskedConnector struct {
	driver.Connector
	asked *atomic.Bool
}

func (w certAskedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := w.Connector.Connect(ctx)
	if err != nil && w.asked.Load() {
		err = &certAskedError{err}
	}
	return conn, err
}

// certAskedError marks a connection error that followed a handshake in
// which the server asked for a client certificate and got none. It reads
// and unwraps as the driver's error.
type certAskedError struct{ err error }

func (e *certAskedError) Error() string { return e.err.Error() }
func (e *certAskedError) Unwrap() error { return e.err }

// nativeModes maps go-sql-driver's tls= values onto modes.
var nativeModes = map[string]sslconn.Mode{
	"false":       sslconn.Disabled,
	"preferred":   sslconn.Preferred,
	"skip-verify": sslconn.Required,
	"true":        sslconn.VerifyIdentity,
}

// parseDSN splits the shared ssl-* parameters and the driver's tls= off a
// DSN, keeping the driver's own parameters byte for byte, and parses the rest
// with the driver.
func parseDSN(dsn string) (*mysql.Config, core.Spec, error) {
	var spec core.Spec
	if err := param.CheckLength(dsn); err != nil {
		return nil, spec, err
	}
	// Parameters start at the first '?' after the last '@': a password may
	// hold '?' and '/', and file paths in ssl-ca need no escaping this way
	// (the driver itself reads parameters after the last '/').
	base, query := dsn, ""
	from := strings.LastIndexByte(dsn, '@') + 1
	if q := strings.IndexByte(dsn[from:], '?'); q >= 0 {
		base, query = dsn[:from+q], dsn[from+q+1:]
	}
	pw := passwordOf(base)
	spec.Params = url.Values{}
	spec.Secrets = []string{pw}
	var keep, keys []string
	tlsVal := ""
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case param.Is(k):
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return nil, spec, core.InvalidOption(k, "badly escaped value", nil)
			}
			spec.Params.Set(k, uv)
		case k == "tls":
			keep = append(keep, kv) // the driver reads it; nativeTLS maps it
			tlsVal = v
		default:
			keep = append(keep, kv)
			keys = append(keys, k)
		}
	}
	// The driver sends parameters it does not know to the server as session
	// variables: a misspelled ssl-mode would come back as SQL error 1064.
	if err := param.CheckUnknown(keys, nil); err != nil {
		return nil, spec, core.Redact(err, spec.Secrets...)
	}
	cfgDSN := base
	if len(keep) > 0 {
		cfgDSN += "?" + strings.Join(keep, "&")
	}
	cfg, err := mysql.ParseDSN(cfgDSN)
	if err != nil {
		if strings.Contains(err.Error(), "unknown config name") {
			return nil, spec, core.InvalidOption("tls", "tls= is not one of false, preferred, skip-verify, true, nor a name registered with mysql.RegisterTLSConfig (or use ssl-mode and ssl-ca instead)", nil)
		}
		return nil, spec, core.Redact(core.InvalidOption("dsn", "invalid DSN", err), pw)
	}
	spec.Secrets = append(spec.Secrets, cfg.Passwd)
	// The driver built cfg.TLS from tls=; read the name instead, as a
	// config built in code is read when it names one.
	cfg.TLS = nil
	if spec.Native, err = nativeTLS(cfg, "tls="); err != nil {
		return nil, spec, err
	}
	// Errors name the setting as the DSN wrote it (tls=1, not tls=true).
	spec.Native.Setting = strings.Replace(spec.Native.Setting, "tls="+cfg.TLSConfig, "tls="+tlsVal, 1)
	cfg.TLSConfig, cfg.AllowFallbackToPlaintext = "", false
	return cfg, spec, nil
}

// passwordOf extracts the password from a DSN prefix the driver could not
// parse, so that it can be kept out of the error.
func passwordOf(base string) string {
	at := strings.LastIndexByte(base, '@')
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(base[:at], ":")
	if !ok {
		return ""
	}
	return pw
}

// Verify asks the server for the session's TLS state (Ssl_version and
// Ssl_cipher, as SHOW STATUS LIKE 'Ssl_cipher' does in the guides): the
// server's word, not the client's belief. Cipher is given by its IANA name.
func Verify(ctx context.Context, db *sql.DB) (sslconn.Status, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return sslconn.Status{}, err
	}
	defer conn.Close()
	return verifyConn(ctx, conn)
}

// VerifyConn is Verify for one pinned connection.
func VerifyConn(ctx context.Context, conn *sql.Conn) (sslconn.Status, error) {
	return verifyConn(ctx, conn)
}

func verifyConn(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (sslconn.Status, error) {
	rows, err := q.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
	if err != nil {
		return sslconn.Status{}, err
	}
	defer rows.Close()
	var st sslconn.Status
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return sslconn.Status{}, err
		}
		switch strings.ToLower(name) {
		case "ssl_version":
			st.Version = value
		case "ssl_cipher":
			st.Cipher = tlsinfo.CipherName(value)
		}
	}
	st.Encrypted = st.Version != ""
	return st, rows.Err()
}
