package mssqlssl

import (
	"context"
	"crypto/tls"
	"database/sql/driver"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect implements driver.Connector. Close ends it.
//
// Under PREFERRED, a server that answered PRELOGIN with ENCRYPT_NOT_SUP
// (ErrServerNoTLS) gets a second login in plaintext, and later connections
// to it log in plaintext at once, as a bare driver would: asking for
// encryption again would cost every connection a second login. Every 5 s
// while they do, a login off the request path asks whether the server
// encrypts now; a server that has started to force encryption says so in
// its PRELOGIN answer (ErrServerRequiresTLS), and this connection and the
// next ask for it; after a failed attempt (a restart) the next one asks.
// The plan, its memory and the rechecks are the core's (core.Connector).
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	// The tokens this call's attempts (and rechecks) logged in with.
	var tokens []string
	return c.life.Connect(ctx, func(ctx context.Context, mode sslconn.Mode) (driver.Conn, sslconn.Mode, error) {
		conn, err := c.connectOnce(ctx, mode, &tokens)
		return conn, mode, err
	}, func() []string { return append(tokens, c.recent.all()...) })
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
		nc, err := c.ssl.DialWatched(ctx, network, addr, nil)
		if err != nil {
			return nil, err
		}
		// Without "connection timeout" the driver reads PRELOGIN, the TLS
		// handshake and LOGINACK with no deadline: a server that accepts
		// and stalls would hold the caller forever. Bound the login.
		// Watched refuses a write into a connection the server has
		// already closed (a restart): the driver then reports a failed
		// send, which database/sql retries on a new connection, instead of
		// a statement whose outcome is unknown.
		r := &sniffConn{Conn: nc, a: a, sniff: !c.strict}
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
	if a.state != nil {
		core.NoteTLSVersion(ctx, a.state.Version)
	}
	a.mu.Unlock()
	st.Mode = c.ssl.Mode()
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
