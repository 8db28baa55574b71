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
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// DriverName is the name this package registers with database/sql:
// sql.Open("mssqlssl", dsn) accepts the same DSNs as Open.
const DriverName = "mssqlssl"

func init() {
	sql.Register(DriverName, Driver{})
	core.RegisterResolver("mssql", func(dsn string, opts ...sslconn.Option) (*core.Config, error) {
		c, err := NewConnector(dsn, opts...)
		if err != nil {
			return nil, err
		}
		return c.ssl, nil
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
}

// NewConnector parses a go-mssqldb DSN (sqlserver:// URL, ADO
// "server=...;user id=..." or "odbc:..." string) with the shared ssl-*
// parameters and returns a connector for sql.OpenDB. opts are applied after
// the DSN's parameters, so they win.
func NewConnector(dsn string, opts ...sslconn.Option) (*Connector, error) {
	return newConnector(dsn, opts)
}

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
	c, err := newConnector(dsn, opts)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func newConnector(dsn string, opts []sslconn.Option) (*Connector, error) {
	if err := core.CheckLength(dsn); err != nil {
		return nil, err
	}
	cfg, err := msdsn.Parse(dsn)
	if err != nil {
		return nil, core.Redact(core.InvalidOption("dsn", "invalid SQL Server DSN", err), cfg.Password, dsnPassword(dsn))
	}
	splitHostComma(&cfg)
	params := url.Values{}
	var keys []string
	for k, v := range cfg.Parameters {
		if core.IsParam(k) {
			params.Set(k, v)
		} else {
			keys = append(keys, k)
		}
	}
	if err := core.CheckUnknown(keys, func(k string) bool { return strings.EqualFold(k, "tlsmin") }); err != nil {
		return nil, err
	}
	native, strict, err := nativeSettings(cfg)
	if err != nil {
		return nil, err
	}
	ssl, err := core.Resolve(core.Spec{Native: native, Params: params, Secrets: []string{cfg.Password}}, opts...)
	if err != nil {
		return nil, err
	}
	if strict && ssl.Mode() < sslconn.Required {
		return nil, core.InvalidOption("encrypt", fmt.Sprintf("encrypt=strict (TDS 8) always encrypts; it cannot be %s", ssl.Mode()), nil)
	}
	return &Connector{base: cfg, ssl: ssl, strict: strict, pass: cfg.Password}, nil
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

// nativeSettings maps go-mssqldb's own parameters onto a mode and options.
// encrypt=false, which encrypts only the login packet, becomes PREFERRED:
// the whole session encrypted when the server supports it.
func nativeSettings(cfg msdsn.Config) (n core.Native, strict bool, err error) {
	p := cfg.Parameters
	trust := false
	if v, ok := p["trustservercertificate"]; ok {
		trust, _ = strconv.ParseBool(v)
	}
	if v, ok := p["encrypt"]; ok {
		n.Setting = "encrypt=" + v
		switch cfg.Encryption {
		case msdsn.EncryptionDisabled:
			n.Mode = sslconn.Disabled
		case msdsn.EncryptionOff:
			n.Mode = sslconn.Preferred
		case msdsn.EncryptionRequired, msdsn.EncryptionStrict:
			n.Mode = sslconn.VerifyIdentity
			if trust {
				n.Mode = sslconn.Required
				n.Setting += "&TrustServerCertificate=true"
			}
			strict = cfg.Encryption == msdsn.EncryptionStrict
		}
	}
	if p["servercertificate"] != "" {
		return n, false, core.InvalidOption("serverCertificate", "pinning one server certificate is not supported; give its CA with ssl-ca and use VERIFY_CA or VERIFY_IDENTITY", nil)
	}
	if f := p["certificate"]; f != "" {
		n.Options = append(n.Options, sslconn.WithCAFile(f))
	}
	if h := p["hostnameincertificate"]; h != "" {
		n.Options = append(n.Options, sslconn.WithServerName(h))
	}
	if v := p["tlsmin"]; v != "" {
		ver, err := tlsinfo.ParseVersion(v)
		if err != nil {
			return n, false, core.InvalidOption("tlsmin", err.Error(), nil)
		}
		n.Options = append(n.Options, sslconn.WithTLSVersions(ver, 0))
	}
	return n, strict, nil
}

// Config returns the SSL configuration in force.
func (c *Connector) Config() *sslconn.Config { return c.ssl.Config }

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver { return &mssql.Driver{} }

// Close implements io.Closer, called when the *sql.DB closes; the connector
// holds nothing that needs releasing.
func (c *Connector) Close() error { return nil }

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
	return fmt.Sprintf("mssqlssl.Connector{user=%s addr=%s db=%s strict=%t %s}", c.base.User, c.addr(), c.base.Database, c.strict, c.ssl)
}

// GoString is String, for %#v.
func (c *Connector) GoString() string { return c.String() }

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	var conn driver.Conn
	mode := c.ssl.Mode()
	err := c.ssl.Retry(ctx, c.addr(), func(ctx context.Context) error {
		var err error
		conn, err = c.connectOnce(ctx, mode)
		if mode == sslconn.Preferred && errors.Is(err, sslconn.ErrServerNoTLS) {
			// The prelogin answer was ENCRYPT_NOT_SUP: this connection
			// goes plaintext; the next one asks again.
			conn, err = c.connectOnce(ctx, sslconn.Disabled)
		}
		return err
	})
	if err != nil {
		return nil, core.Redact(err, c.pass)
	}
	return conn, nil
}

// attempt observes one connection attempt from the side: the server's
// PRELOGIN answer, the TLS state, and our own verification error, which the
// driver flattens into text.
type attempt struct {
	serverEncrypt atomic.Int32 // -1 until the PRELOGIN answer is seen
	mu            sync.Mutex
	state         *tls.ConnectionState
	verifyErr     error
}

func (c *Connector) connectOnce(ctx context.Context, mode sslconn.Mode) (driver.Conn, error) {
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
		tc := c.ssl.TLSConfigMode(mode, c.addr())
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
	conn := mssql.NewConnectorConfig(cfg)
	var (
		raw     *sniffConn
		loginBy time.Time
	)
	conn.Dialer = dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := c.ssl.Dialer()(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Without "connection timeout" the driver reads PRELOGIN, the TLS
		// handshake and LOGINACK with no deadline: a server that accepts
		// and stalls would hold the caller forever. Bound the login.
		loginBy = time.Now().Add(c.ssl.HandshakeTimeout())
		_ = nc.SetDeadline(loginBy)
		raw = &sniffConn{Conn: nc, peer: core.NewPeerCheck(nc), a: a, sniff: !c.strict}
		return raw, nil
	})
	dc, err := conn.Connect(ctx)
	if err != nil {
		if ctx.Err() == nil && !loginBy.IsZero() && !time.Now().Before(loginBy) {
			return nil, core.NewError(sslconn.ErrHandshakeTimeout, mode, c.addr(),
				"no PRELOGIN answer, TLS handshake and login within "+c.ssl.HandshakeTimeout().String(), os.ErrDeadlineExceeded)
		}
		return nil, c.classify(err, mode, a)
	}
	if raw != nil {
		_ = raw.Conn.SetDeadline(time.Time{})
		a.mu.Lock()
		st := core.StatusOf(a.state)
		a.mu.Unlock()
		raw.register(dc, st)
	}
	return dc, nil
}

func (c *Connector) classify(err error, mode sslconn.Mode, a *attempt) error {
	addr := c.addr()
	a.mu.Lock()
	verr := a.verifyErr
	a.mu.Unlock()
	server := a.serverEncrypt.Load()
	var me mssql.Error
	switch {
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
		return 0, core.NotSent(s.Conn, err)
	}
	return s.Conn.Write(p)
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
