package mongossl

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/mongossl/internal/mongocore"
	"github.com/sslconn/sslconn/sslconn"
)

// ClientOptions parses a mongodb:// or mongodb+srv:// URI with the shared
// ssl-* parameters and returns the driver's options, with a dialer that does
// TLS in the resolved mode for every host. opts are applied after the URI's
// parameters, so they win. Set monitors, pool settings and the rest on the
// result as usual; ConnectOptions connects it with Connect's fast errors.
func ClientOptions(rawURI string, opts ...sslconn.Option) (*options.ClientOptions, error) {
	co, _, err := clientOptions(rawURI, opts)
	return co, err
}

// init registers the adapter for core.ResolveDSN.
//
//v1:replace "mongo" => "mongov1"
func init() {
	core.RegisterResolver("mongo", func(uri string, opts ...sslconn.Option) (*core.Resolved, error) {
		co, d, err := clientOptions(uri, opts)
		if err != nil {
			return nil, err
		}
		return &core.Resolved{Config: d.Cfg, Addrs: co.Hosts}, nil
	})
}

func clientOptions(rawURI string, opts []sslconn.Option) (*options.ClientOptions, *dialer, error) {
	p, err := mongocore.ParseURI(rawURI, opts)
	if err != nil {
		return nil, nil, err
	}
	co := options.Client().ApplyURI(p.URI)
	if err := co.Validate(); err != nil {
		return nil, nil, p.InvalidURI(err)
	}
	co.DisableOCSPEndpointCheck = p.NoEndpoint
	co.DisableCertificateRevocationCheck = p.NoRevocation //v1:omit v1's options lack it; the dialer has it from p
	return co, install(co, p.Dialer(pkg, opts)), nil
}

// ConnectOptions returns a client connected with the driver's own options,
// built in code, with TLS in the SSL modes on top. co is copied, never
// changed, and all of it keeps working: Monitor, PoolMonitor and
// ServerMonitor (OpenTelemetry's otelmongo monitor among them), Auth,
// ServerAPIOptions, pool settings, AppName, timeouts and the rest.
//
// TLS is the package's dialer's: co.TLSConfig, when set, turns TLS on and
// maps onto a mode as the URI's options do: VERIFY_IDENTITY, or REQUIRED
// with InsecureSkipVerify; its RootCAs, first certificate, ServerName,
// MinVersion, MaxVersion and CipherSuites become the equivalent options,
// which opts override. An explicit mode that contradicts it
// (InsecureSkipVerify and VERIFY_CA, say) is ErrInvalidOption. Without
// TLSConfig, the mode is the library's default: PREFERRED, or VERIFY_CA
// with a CA. co.Dialer, when set, makes the TCP connection under TLS (an
// SSH tunnel, a SOCKS proxy); sslconn.WithDialer, when given, wins over it.
// Options that ClientOptions returned connect with their URI's settings,
// opts added. Options from the driver's own ApplyURI keep only the
// tls.Config it built: tls=false and tlsAllowInvalidHostnames leave no
// trace there, so for a URI with TLS options use ClientOptions, which
// reads them all. The shared ssl-* parameters of such a URI, which the
// driver keeps as unknown options and ignores, are read here as
// ClientOptions reads them (a misspelt one is ErrInvalidOption), and opts
// win over them.
//
// Like Connect, it opens one connection before returning, so that an error
// retrying cannot fix comes back at once as the matching sslconn error.
//
// The client notices a server closing its connections (a restart) as it
// happens, on Linux, and has the driver drop them, so the first operation
// afterwards gets a new connection instead of failing on a closed one as
// with the bare driver; its command monitor does not see the ping this
// takes. Options passed to mongo.Connect directly do without.
func ConnectOptions(ctx context.Context, co *options.ClientOptions, opts ...sslconn.Option) (*mongo.Client, error) {
	c, d, err := fromOptions(co, opts)
	if err != nil {
		return nil, err
	}
	// The preflight's connections go to the driver's first dials, its
	// monitor's (see mongocore/park.go). A load balancer's client has no
	// monitor: its preflight says hello on a connection of its own.
	var park *mongocore.Parking
	if c.LoadBalanced != nil && *c.LoadBalanced {
		err = mongocore.Preflight(ctx, d, c.Hosts)
	} else {
		park, err = mongocore.Park(ctx, d, c.Hosts)
	}
	if err != nil {
		return nil, err
	}
	// So that the first operation after a restart gets a new connection,
	// not a pooled one the server closed (see mongocore/closeping.go).
	d.Live = mongocore.NewLive()
	c.Monitor = hidePings(c.Monitor)
	client, err := mongo.Connect(c) //v1:replace mongo.Connect(c) => mongo.Connect(ctx, c)
	if err != nil {
		park.Fail(err)
		return nil, err
	}
	if err := park.Wait(ctx); err != nil {
		// Wait closed the client's connections and refuses its dials:
		// Disconnect waits for nothing.
		dctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, err
	}
	d.Live.Attach(ping(client))
	return client, nil
}

// disconnectTimeout bounds the Disconnect of a client whose Connect failed
// (its pool's part; its monitor's connections are closed already).
const disconnectTimeout = 5 * time.Second

// fromOptions copies co and installs the TLS dialer on the copy.
func fromOptions(co *options.ClientOptions, opts []sslconn.Option) (*options.ClientOptions, *dialer, error) {
	if co == nil {
		return nil, nil, mongocore.NilOptions()
	}
	c := *co // the caller's stays as it is; only c's TLSConfig and Dialer change
	var pw string
	if c.Auth != nil {
		pw = c.Auth.Password
	}
	if err := c.Validate(); err != nil {
		return nil, nil, mongocore.InvalidOptions(err, pw)
	}
	var user mongocore.ContextDialer
	if c.Dialer != nil {
		user = c.Dialer
	}
	d, err := mongocore.FromOptions(pkg, c.TLSConfig, user, pw, c.GetURI(), opts)
	if err != nil {
		return nil, nil, err
	}
	d.Revocation = c.DisableCertificateRevocationCheck == nil || !*c.DisableCertificateRevocationCheck //v1:omit v1's options lack it; a dialer from ClientOptions keeps the URI's
	return &c, install(&c, d), nil
}

// install makes co's connections go through d: TLS is the dialer's, the
// driver's own is switched off.
func install(co *options.ClientOptions, d *dialer) *dialer {
	co.TLSConfig = nil // TLS is the dialer's (mongodb+srv turns it on by default)
	co.Dialer = d
	return d
}

// dialer is the ContextDialer the package installs (see mongocore.Dialer).
type dialer = mongocore.Dialer

// pkg names the package in messages.
//
//v1:replace "mongossl" => "mongov1"
const pkg = "mongossl"

// Connect returns a connected client. Before handing the client over, it
// opens one connection to the seed hosts and waits for the server's answer
// to the driver's first hello on it, so that an error retrying cannot fix
// (unknown authority, host name mismatch, expired certificate, a server
// without TLS under REQUIRED and stronger) comes back now, as the matching
// sslconn error, rather than as a server-selection timeout 30 s later; a
// server that is restarting is waited for up to the retry budget and ctx.
// That connection is the driver's monitor's: it costs no round trip more
// than the bare driver's mongo.Connect and first operation.
// It is ClientOptions, then ConnectOptions.
func Connect(ctx context.Context, rawURI string, opts ...sslconn.Option) (*mongo.Client, error) {
	co, err := ClientOptions(rawURI, opts...)
	if err != nil {
		return nil, err
	}
	return ConnectOptions(ctx, co)
}

// Verify reports the TLS state of a live connection of the client: the one
// that carries a ping addressed to a database named after a random token,
// as the client's dialer made it. It asks the connection itself, not the
// server's view of the client's address, so it works through proxies and NAT.
func Verify(ctx context.Context, c *mongo.Client) (sslconn.Status, error) {
	p := core.NewProbe()
	defer p.Close()
	if err := c.Database(p.Token()).RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return sslconn.Status{}, err
	}
	st, ok := p.Status()
	if !ok {
		return sslconn.Status{}, mongocore.NotOurs(pkg)
	}
	return st, nil
}
