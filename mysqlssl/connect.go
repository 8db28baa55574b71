package mysqlssl

import (
	"context"
	"crypto/tls"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect implements driver.Connector: it connects in the configured mode,
// retrying refused and reset connections within the retry budget, and maps
// failures onto sslconn's errors. Close ends it.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.life.Connect(ctx, c.attempt, nil)
	if err != nil {
		return nil, err
	}
	return c.wrap(conn), nil
}

// attempt is one connection attempt in mode. Under PREFERRED the driver
// makes both of the plan's attempts in one connection
// (AllowFallbackToPlaintext): TLS when the server's greeting offers
// CLIENT_SSL, plaintext when it does not, which reports to the plan as its
// plaintext attempt. Nothing is remembered that would make a later
// connection skip asking: the greeting says it at no cost.
func (c *Connector) attempt(ctx context.Context, mode sslconn.Mode) (driver.Conn, sslconn.Mode, error) {
	// The driver reads the greeting and runs the TLS handshake and login
	// without a deadline unless ctx has one: a server that accepts and then
	// stalls would hold database/sql's Ping or Query forever. Each attempt
	// gets the dial timeout plus the handshake timeout.
	bound := c.ssl.Settings().HandshakeTimeout + c.cfg.Timeout
	actx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	inner, err := c.driverConnector(mode)
	if err != nil {
		return nil, mode, core.Permanent(err)
	}
	conn, err := inner.Connect(actx)
	core.NoteTLSVersion(ctx, uint16(inner.seen.version.Load())) // for telemetry
	if r := inner.seen.refused.Load(); err != nil && r != nil {
		return nil, mode, core.Permanent(r) // authguard.go; the driver says only "bad connection"
	}
	switch {
	case err == nil && mode == sslconn.Preferred && !inner.seen.handshake.Load():
		return conn, sslconn.Disabled, nil // the driver's fallback: no CLIENT_SSL
	case err == nil:
		return conn, mode, nil
	case ctx.Err() == nil && actx.Err() != nil:
		return nil, mode, core.NewError(sslconn.ErrHandshakeTimeout, mode, c.cfg.Addr,
			"no greeting, TLS handshake and login within "+bound.String(), os.ErrDeadlineExceeded)
	}
	return nil, mode, c.classify(actx, err)
}

// driverConnector is the driver's connector for one new connection, with
// TLS set for mode. Each connection gets its own copy of the config: the
// driver's own PREFERRED sets a shared config's TLS to nil on the first
// fallback, turning the whole pool plaintext, while here the fallback is
// decided per connection. The user's BeforeConnect, kept in the copy, runs
// after this, as the driver calls it. The connection's tls.Config notes
// its handshake (see watchHandshake).
func (c *Connector) driverConnector(mode sslconn.Mode) (*watchedConnector, error) {
	cfg := c.cfg.Clone()
	cfg.TLS = c.ssl.Settings().TLSConfig(mode, cfg.Addr)
	cfg.AllowFallbackToPlaintext = mode == sslconn.Preferred
	seen := watchHandshake(cfg.TLS)
	cfg.DialFunc = c.guarded(c.dialer(cfg), seen)
	inner, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &watchedConnector{inner, seen}, nil
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
				// The server asked for a client certificate in this
				// handshake and none went. An account created REQUIRE
				// X509 (or ISSUER, SUBJECT) is then refused with 1045, but
				// so is a wrong password: MariaDB 10.11 answers both with
				// the same bytes, and checks the password first, so no
				// second login without a certificate it trusts tells them
				// apart (MariaDB asks every client for one once ssl-ca is
				// set). Say both, the common one first, and claim neither.
				return core.Permanent(c.accessDenied(err, mode, addr))
			}
			if mode == sslconn.Disabled {
				switch tlsOK, asked := c.acceptsTLSLogin(ctx); {
				case tlsOK:
					return core.NewError(sslconn.ErrServerRequiresTLS, mode, addr,
						"the plaintext login was refused but the same login over TLS succeeds: the server (require_secure_transport) or the account (REQUIRE SSL) requires TLS; MariaDB reports both as error 1045, like a wrong password", err)
				case asked:
					return core.Permanent(c.accessDenied(err, mode, addr))
				}
			}
		}
		// Credentials, unknown database, privileges: retrying cannot help.
		return core.Permanent(core.Classify(err, mode, addr))
	}
	return core.Classify(err, mode, addr)
}

// acceptsTLSLogin tells "requires TLS" from "wrong password" after a 1045 in
// DISABLED: it tries the same login once over TLS, without verifying, and
// reports whether the server accepted it, and else whether it asked for a
// client certificate in that handshake and got none (the account may
// require one: see accessDenied).
func (c *Connector) acceptsTLSLogin(ctx context.Context) (ok, certAsked bool) {
	// The same config in REQUIRED: the user's BeforeConnect runs too, so
	// the login is the one that was refused.
	conn, err := c.driverConnector(sslconn.Required)
	if err != nil {
		return false, false
	}
	dc, err := conn.Connect(ctx)
	if err != nil {
		var me *mysql.MySQLError
		return false, errors.As(err, &me) && me.Number == erAccessDenied && conn.seen.asked.Load()
	}
	dc.Close()
	return true, false
}

// accessDenied is the server's 1045 after a TLS handshake in which it asked
// for a client certificate and none was sent: a wrong user name or
// password, or an account that requires a certificate, which the server
// does not tell apart. Its text names both, in that order, and the fix of
// each; it matches no sslconn sentinel, and errors.As reaches the
// driver's *mysql.MySQLError.
type accessDenied struct {
	err  error
	mode sslconn.Mode
	addr string
	fix  string // the certificate's fix, in the form the user sets things
}

// accessDenied names the knobs as the user sets them: DSN parameters,
// option functions or the command's flags.
func (c *Connector) accessDenied(err error, mode sslconn.Mode, addr string) *accessDenied {
	src := &c.ssl.Settings().Sources
	cert := src.Name(isettings.Cert)
	if cert == "ssl-cert" {
		cert += " and ssl-key"
	}
	fix := "set " + cert + " to a certificate the server's CA signed"
	if mode == sslconn.Disabled {
		if m := src.Setting(isettings.Mode, "REQUIRED"); m != "" {
			fix = "set " + m + " or stronger, and " + fix
		}
	}
	return &accessDenied{err: err, mode: mode, addr: addr, fix: fix}
}

func (e *accessDenied) Error() string {
	fix := e.fix
	return "sslconn: " + e.mode.String() + " connection to " + e.addr + ": " + e.err.Error() +
		": either the user name or password is wrong, or the account requires a client certificate (REQUIRE X509, ISSUER or SUBJECT) and none is configured;" +
		" the server asked for one, and MariaDB and MySQL refuse both with error 1045" +
		" (check the user name and password; if SHOW CREATE USER shows REQUIRE X509, ISSUER or SUBJECT, " + fix + ")"
}

func (e *accessDenied) Unwrap() error { return e.err }

// handshakeNotes is what a connection's tls.Config saw of its handshake.
type handshakeNotes struct {
	// asked: the server asked for a client certificate and none was sent.
	asked atomic.Bool
	// handshake: a TLS handshake completed.
	handshake atomic.Bool
	version   atomic.Uint32 // the TLS version agreed
	// refused: the login's guard refused to send a write (authguard.go).
	refused atomic.Pointer[sslconn.Error]
}

// watchHandshake makes tc (one connection's own tls.Config; nil for
// plaintext) note its handshake: the driver runs it without a context, so
// the flag the library's tls.Config sets through the handshake's context
// cannot reach it, and the driver does not say whether it fell back to
// plaintext.
func watchHandshake(tc *tls.Config) *handshakeNotes {
	seen := new(handshakeNotes)
	if tc == nil {
		return seen
	}
	if get := tc.GetClientCertificate; get != nil {
		tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := get(cri)
			if err == nil && (cert == nil || len(cert.Certificate) == 0) {
				seen.asked.Store(true)
			}
			return cert, err
		}
	}
	verify := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		seen.handshake.Store(true)
		seen.version.Store(uint32(cs.Version))
		return nil
	}
	return seen
}

// watchedConnector is the driver's connector for one connection; its
// error is a *certAskedError when the server asked for a client
// certificate and none was sent.
type watchedConnector struct {
	driver.Connector
	seen *handshakeNotes
}

func (w *watchedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := w.Connector.Connect(ctx)
	if err != nil && w.seen.asked.Load() {
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

// dialer is the driver's DialFunc: the connection WithDialer, the user's own
// DialFunc or the driver would make, through the core's watch, which refuses
// a statement written into a connection the server closed or that went
// silent (sslconn.ErrNotSent: database/sql retries it on another
// connection) and arms the socket against a silent server
// (WithDeadPeerTimeout). A network registered with mysql.RegisterDialContext
// is left to the driver: its dial cannot be reached from here.
func (c *Connector) dialer(cfg *mysql.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	// nil: the Config's (WithDialer's, else a net.Dialer, as the
	// driver's own would be).
	var dial sslconn.DialFunc
	switch {
	case c.ssl.Settings().Dialer != nil:
	case cfg.DialFunc != nil:
		dial = cfg.DialFunc
	case cfg.Net != "tcp" && cfg.Net != "tcp4" && cfg.Net != "tcp6" && cfg.Net != "unix":
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.ssl.DialWatched(ctx, network, addr, dial)
	}
}

// guarded has the connections dial makes guard their login (authguard.go):
// without TLS, no public key fetched unless the user opted in, and no
// cleartext password unless the mode is DISABLED. A Unix socket has no
// one on its path; a network registered with mysql.RegisterDialContext
// (dial is nil) is left to the driver.
func (c *Connector) guarded(dial func(context.Context, string, string) (net.Conn, error), seen *handshakeNotes) func(context.Context, string, string) (net.Conn, error) {
	if dial == nil || c.cfg.Net == "unix" {
		return dial
	}
	// The configured mode, not the attempt's: PREFERRED makes its
	// attempts in DISABLED to an address known to serve plaintext.
	policy := authPolicy{
		mode:      c.ssl.Mode(),
		host:      c.cfg.Addr,
		keyFetch:  c.keyFetch || c.cfg.ServerPubKey != "",
		cleartext: c.ssl.Mode() == sslconn.Disabled,
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return guardAuth(conn, policy, &seen.refused), nil
	}
}
