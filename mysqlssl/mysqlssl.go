package mysqlssl

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/sslconn"
)

// Connector is a driver.Connector that connects in the configured SSL mode,
// retrying while the server is down or restarting.
type Connector struct {
	cfg *mysql.Config // the driver's config as given, its TLS decided per connection
	ssl *core.Config
	// life retries Connect's attempts and ends with Close: Connects under
	// way stop retrying, later ones fail at once.
	life *core.Connector
	// rejectRO turns a write refused by a read-only node into a retry on
	// a new connection; roGen counts the writable nodes found after such
	// refusals (see readonly.go).
	rejectRO atomic.Bool
	roGen    atomic.Int64
	roMu     sync.Mutex
	roSearch *writableSearch // the search for a writable node under way
	// keyFetch: the DSN allows fetching the server's public key over a
	// connection without TLS (get-server-public-key; see authguard.go).
	keyFetch bool
}

// NewConnector parses a go-sql-driver/mysql DSN with the shared ssl-*
// parameters (see the package doc) and returns a connector for sql.OpenDB.
// opts are applied after the DSN's parameters, so they win.
func NewConnector(dsn string, opts ...sslconn.Option) (*Connector, error) {
	d, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return newConnector(d, opts)
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
//
// The shared ssl-* parameters in cfg.Params, where mysql.ParseDSN leaves
// every name it does not know, apply as they do in NewConnector's DSN and
// are taken out of the copy, so the driver never sends them to the server
// as session variables; a misspelt one (ssl-mdoe) is an ErrInvalidOption
// error. opts are applied after them, so they win, as with a DSN.
func NewConnectorFromConfig(cfg *mysql.Config, opts ...sslconn.Option) (*Connector, error) {
	if cfg == nil {
		return nil, core.InvalidOption("config", "the *mysql.Config is nil", nil)
	}
	c := cfg.Clone()
	params, keyFetch, err := takeParams(c)
	if err != nil {
		return nil, core.Redact(err, c.Passwd)
	}
	native, err := nativeTLS(c, "TLSConfig=")
	if err != nil {
		return nil, core.Redact(err, c.Passwd)
	}
	c.TLS, c.TLSConfig, c.AllowFallbackToPlaintext = nil, "", false
	return newConnector(parsedDSN{cfg: c, spec: core.Spec{Native: native, Params: params, Secrets: []string{c.Passwd}}, rejectRO: true, keyFetch: keyFetch}, opts)
}

// takeParams moves the shared ssl-* parameters and the public key ones
// (get-server-public-key, server-public-key-path) out of c.Params (c is
// the connector's own copy): the driver would send each name it does not
// know to the server as a session variable (SET ssl-mode = ..., SQL error
// 1064 at the first connection). The names left are checked as a DSN's
// are.
func takeParams(c *mysql.Config) (ours url.Values, keyFetch bool, err error) {
	ours = url.Values{}
	var keys []string
	for k, v := range c.Params { // ParseDSN has unescaped v
		pk, isPK := isPubKeyParam(k)
		switch {
		case isPK:
			delete(c.Params, k)
			name, on, err := pubKeyParam(k, pk, v)
			if err != nil {
				return nil, false, err
			}
			if name != "" {
				if c.ServerPubKey != "" {
					return nil, false, core.InvalidOption(pubKeyPath, "server-public-key-path and ServerPubKey both name the server's public key; give one", nil)
				}
				c.ServerPubKey = name
			}
			keyFetch = keyFetch || on
		case param.Is(k):
			ours.Set(k, v)
			delete(c.Params, k)
		default:
			keys = append(keys, k)
		}
	}
	return ours, keyFetch, param.CheckUnknown(keys, nil)
}

// Open returns a *sql.DB for the DSN; see NewConnector.
func Open(dsn string, opts ...sslconn.Option) (*sql.DB, error) { return sqlDriver.OpenDB(dsn, opts...) }

// DriverName is the name this package registers with database/sql:
// sql.Open("mysqlssl", dsn) accepts the same DSNs as Open.
const DriverName = "mysqlssl"

// newConnector is the one path behind NewConnector and
// NewConnectorFromConfig: d.cfg is the connector's own copy.
func newConnector(d parsedDSN, opts []sslconn.Option) (*Connector, error) {
	d.spec.Engine = "mysql" // MySQL or MariaDB: the greeting tells, after the connection is made
	ssl, err := core.Resolve(d.spec, opts...)
	if err != nil {
		return nil, err
	}
	cfg := d.cfg
	cfg.CheckConnLiveness = true // drop pooled connections a restart killed
	// The connector's wrapper handles read-only refusals (readonly.go):
	// it needs to see the driver's error.
	cfg.RejectReadOnly = false
	// Validate now, as the driver would: a bad config is an error here,
	// not at the first connection.
	if _, err := mysql.NewConnector(cfg.Clone()); err != nil {
		return nil, core.Redact(core.InvalidOption("dsn", "invalid DSN", err), cfg.Passwd)
	}
	c := &Connector{cfg: cfg, ssl: ssl, life: ssl.Connector(cfg.Addr, cfg.Passwd), keyFetch: d.keyFetch}
	c.rejectRO.Store(d.rejectRO)
	return c, nil
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
func (c *Connector) Close() error { return c.life.Close() }

// sqlDriver registers the package with database/sql and the sslconn
// command, and serves Driver and Open.
var sqlDriver = core.SQLDriver[*Connector]{New: NewConnector, Life: func(c *Connector) *core.Connector { return c.life }}

func init() { sqlDriver.Register(DriverName, "mysql", Driver{}) }

// Driver is the database/sql driver registered as "mysqlssl".
type Driver struct{}

// Open implements driver.Driver; database/sql uses OpenConnector instead.
func (Driver) Open(dsn string) (driver.Conn, error) { return sqlDriver.Open(dsn) }

// OpenConnector implements driver.DriverContext.
func (Driver) OpenConnector(dsn string) (driver.Connector, error) { return NewConnector(dsn) }
