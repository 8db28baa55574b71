package mssqlssl

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Connector is a driver.Connector that connects in the configured SSL mode,
// retrying while the server is down or restarting.
type Connector struct {
	base   msdsn.Config
	ssl    *core.Config
	strict bool // TDS 8: TLS first, ALPN tds/8.0
	// token, when set, logs every new connection in with the access token
	// it returns (FEDAUTH, security token library) instead of a password.
	token func(context.Context) (string, error)
	// recent are the last tokens token returned, kept only to keep them
	// out of the provider's own error texts.
	recent recentTokens
	// life retries Connect's attempts and ends with Close: Connects under
	// way stop retrying, later ones fail at once.
	life *core.Connector
}

// NewConnector parses a go-mssqldb DSN (sqlserver:// URL, ADO
// "server=...;user id=..." or "odbc:..." string) with the shared ssl-*
// parameters and returns a connector for sql.OpenDB. opts are applied after
// the DSN's parameters, so they win.
func NewConnector(dsn string, opts ...sslconn.Option) (*Connector, error) {
	cfg, pw, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	// The password as the DSN's own syntax holds it, too: the driver may
	// read the DSN another way (a URL-like text it takes for ADO).
	return newConnector(cfg, opts, pw)
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

// Open returns a *sql.DB for the DSN; see NewConnector.
func Open(dsn string, opts ...sslconn.Option) (*sql.DB, error) { return sqlDriver.OpenDB(dsn, opts...) }

// DriverName is the name this package registers with database/sql:
// sql.Open("mssqlssl", dsn) accepts the same DSNs as Open.
const DriverName = "mssqlssl"

// newConnector is the one path behind NewConnector and
// NewConnectorFromConfig: cfg is the connector's own copy.
func newConnector(cfg msdsn.Config, opts []sslconn.Option, moreSecrets ...string) (*Connector, error) {
	secrets := append([]string{cfg.Password, cfg.ChangePassword, cfg.Parameters[msdsn.Password]}, moreSecrets...)
	native, strict, err := nativeSettings(cfg)
	if err != nil {
		return nil, core.Redact(err, secrets...)
	}
	splitHostComma(&cfg)
	params, err := sslParams(cfg.Parameters)
	if err != nil {
		return nil, core.Redact(err, secrets...)
	}
	ssl, err := core.Resolve(core.Spec{Native: native, Params: params, Secrets: secrets, Engine: "microsoft.sql_server"}, opts...)
	if err != nil {
		return nil, err
	}
	if strict && ssl.Mode() < sslconn.Required {
		return nil, core.InvalidOption("encrypt", fmt.Sprintf("%s (TDS 8) always encrypts; it cannot be %s", encryptionSetting(cfg), ssl.Mode()), nil)
	}
	c := &Connector{base: cfg, ssl: ssl, strict: strict}
	c.life = ssl.Connector(c.addr(), cfg.Password)
	return c, nil
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
func (c *Connector) Close() error { return c.life.Close() }

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

// sqlDriver registers the package with database/sql and the sslconn
// command, and serves Driver and Open.
var sqlDriver = core.SQLDriver[*Connector]{New: NewConnector, Life: func(c *Connector) *core.Connector { return c.life }}

func init() { sqlDriver.Register(DriverName, "mssql", Driver{}) }

// Driver is the database/sql driver registered as "mssqlssl".
type Driver struct{}

// Open implements driver.Driver; database/sql uses OpenConnector instead.
func (Driver) Open(dsn string) (driver.Conn, error) { return sqlDriver.Open(dsn) }

// OpenConnector implements driver.DriverContext.
func (Driver) OpenConnector(dsn string) (driver.Connector, error) { return NewConnector(dsn) }
