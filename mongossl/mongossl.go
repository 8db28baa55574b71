package mongossl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// uri is a MongoDB connection string split the way the driver reads it:
// scheme://[userinfo@]host1[,host2...]/[db][?options].
type uri struct {
	scheme, userinfo, hosts, path string
	opts                          []string // key=value, in order
}

func splitURI(s string) (*uri, error) {
	if err := core.CheckLength(s); err != nil {
		return nil, err
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "mongodb" && scheme != "mongodb+srv") {
		return nil, core.InvalidOption("uri", "a MongoDB URI starts with mongodb:// or mongodb+srv://", nil)
	}
	u := &uri{scheme: scheme}
	rest, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, u.path = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		u.userinfo, rest = rest[:at], rest[at+1:]
	}
	u.hosts = rest
	if u.hosts == "" {
		return nil, core.InvalidOption("uri", "the URI names no host", nil)
	}
	u.opts = strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
	return u, nil
}

func (u *uri) password() string {
	_, pw, ok := strings.Cut(u.userinfo, ":")
	if !ok {
		return ""
	}
	if p, err := url.PathUnescape(pw); err == nil {
		return p
	}
	return pw
}

func (u *uri) String() string {
	s := u.scheme + "://"
	if u.userinfo != "" {
		s += u.userinfo + "@"
	}
	s += u.hosts + u.path
	if len(u.opts) > 0 {
		if u.path == "" {
			s += "/"
		}
		s += "?" + strings.Join(u.opts, "&")
	}
	return s
}

// driverTLS is what the driver's own TLS options said.
type driverTLS struct {
	said                        []string // the settings as written, for errors
	implied                     []string // options that turn TLS on without tls=true, as written
	tls, tlsSet                 bool
	insecure, invalidHosts      bool
	insecureKey                 string // tlsInsecure or a synonym, as written, if present
	caFile, certKeyFile         string
	certFile, keyFile, password string
	// tlsDisableOCSPEndpointCheck and tlsDisableCertificateRevocationCheck,
	// when present: the driver's ClientOptions fields.
	noEndpoint, noRevocation *bool
	noEndpointKey, noRevKey  string
}

// mode maps the driver's TLS options onto a mode, as the driver would
// behave, except that tlsAllowInvalidHostnames, which the driver parses and
// then ignores, is honoured: it means VERIFY_CA.
func (d *driverTLS) mode(srv bool) sslconn.Mode {
	enabled := d.tls || (!d.tlsSet && (srv || len(d.implied) > 0 || d.insecure))
	switch {
	case d.tlsSet && !d.tls:
		return sslconn.Disabled
	case !enabled:
		return 0
	case d.insecure:
		return sslconn.Required
	case d.invalidHosts:
		return sslconn.VerifyCA
	}
	return sslconn.VerifyIdentity
}

// take removes the shared ssl-* parameters and the driver's TLS options
// from u, which the dialer takes over.
func take(u *uri) (url.Values, *driverTLS, error) {
	ours := url.Values{}
	d := &driverTLS{}
	var keep, keys []string
	for _, kv := range u.opts {
		k, v, _ := strings.Cut(kv, "=")
		uv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, nil, core.InvalidOption(k, "badly escaped value", nil)
		}
		boolean := func() (bool, error) {
			b, err := strconv.ParseBool(uv)
			if err != nil {
				return false, core.InvalidOption(k, fmt.Sprintf("%s=%s is not true or false", k, uv), nil)
			}
			d.said = append(d.said, k+"="+uv)
			return b, nil
		}
		switch strings.ToLower(k) {
		case "tls", "ssl":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			if d.tlsSet && d.tls != b {
				return nil, nil, core.InvalidOption("tls", "tls and ssl disagree", nil)
			}
			d.tls, d.tlsSet = b, true
		case "tlsinsecure", "sslinsecure", "tlsallowinvalidcertificates", "sslallowinvalidcertificates":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			d.insecure = d.insecure || b
			if d.insecureKey == "" {
				d.insecureKey = k
			}
		case "tlsallowinvalidhostnames", "sslallowinvalidhostnames":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			d.invalidHosts = b
		case "tlscafile", "sslcertificateauthorityfile":
			d.caFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatekeyfile", "sslclientcertificatekeyfile":
			d.certKeyFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatefile":
			// Like the driver, a client certificate turns TLS on.
			d.certFile = uv
			d.implied = append(d.implied, k)
		case "tlsprivatekeyfile":
			d.keyFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatekeyfilepassword", "sslclientcertificatekeypassword":
			d.password = uv
		case "tlsdisableocspendpointcheck", "tlsdisablecertificaterevocationcheck":
			// Like the driver, either turns TLS on, whatever its value.
			b, err := strconv.ParseBool(uv)
			if err != nil {
				return nil, nil, core.InvalidOption(k, fmt.Sprintf("%s=%s is not true or false", k, uv), nil)
			}
			d.implied = append(d.implied, k)
			if strings.EqualFold(k, "tlsDisableOCSPEndpointCheck") {
				d.noEndpoint, d.noEndpointKey = &b, k
			} else {
				d.noRevocation, d.noRevKey = &b, k
			}
		default:
			if core.IsParam(k) {
				ours.Set(k, uv)
			} else {
				keep = append(keep, kv)
				keys = append(keys, k)
			}
		}
	}
	if err := core.CheckUnknown(keys, nil); err != nil {
		return nil, nil, err
	}
	// The driver's own rules for the revocation options, which it no
	// longer sees.
	switch {
	case d.noEndpoint != nil && d.noRevocation != nil:
		return nil, nil, core.InvalidOption(d.noRevKey, d.noEndpointKey+" cannot be used with "+d.noRevKey+" (the driver's rule): drop one of them", nil)
	case d.insecureKey != "" && (d.noEndpoint != nil || d.noRevocation != nil):
		rev := d.noEndpointKey + d.noRevKey
		return nil, nil, core.InvalidOption(rev, d.insecureKey+" cannot be used with "+rev+" (the driver's rule): without verification there is no revocation to check", nil)
	}
	u.opts = keep
	return ours, d, nil
}

// spec is what the driver's TLS options say, for the resolver.
func (d *driverTLS) spec(srv bool) core.Native {
	said := d.said
	if !d.tlsSet {
		// TLS is implied: errors name the options that imply it.
		said = append(append([]string(nil), d.implied...), said...)
	}
	n := core.Native{Mode: d.mode(srv), Setting: strings.Join(said, "&")}
	if srv && n.Setting == "" {
		n.Setting = "mongodb+srv://"
	}
	if d.caFile != "" {
		n.Options = append(n.Options, sslconn.WithCAFile(d.caFile))
	}
	switch {
	case d.certKeyFile != "":
		n.Options = append(n.Options, sslconn.WithClientCertFiles(d.certKeyFile, d.certKeyFile))
	case d.certFile != "" || d.keyFile != "":
		n.Options = append(n.Options, sslconn.WithClientCertFiles(d.certFile, d.keyFile))
	}
	if d.password != "" {
		n.Options = append(n.Options, sslconn.WithClientKeyPassword(d.password))
	}
	return n
}

// ClientOptions parses a mongodb:// or mongodb+srv:// URI with the shared
// ssl-* parameters and returns the driver's options, with a dialer that does
// TLS in the resolved mode for every host. opts are applied after the URI's
// parameters, so they win. Set monitors, pool settings and the rest on the
// result as usual; ConnectOptions connects it with Connect's fast errors.
func ClientOptions(rawURI string, opts ...sslconn.Option) (*options.ClientOptions, error) {
	co, _, err := clientOptions(rawURI, opts)
	return co, err
}

func init() {
	core.RegisterResolver("mongo", func(uri string, opts ...sslconn.Option) (*core.Config, error) {
		_, d, err := clientOptions(uri, opts)
		if err != nil {
			return nil, err
		}
		return d.cfg, nil
	})
}

func clientOptions(rawURI string, opts []sslconn.Option) (*options.ClientOptions, *dialer, error) {
	u, err := splitURI(rawURI)
	if err != nil {
		return nil, nil, err
	}
	pw := u.password()
	params, d, err := take(u)
	if err != nil {
		return nil, nil, core.Redact(err, pw)
	}
	spec := core.Spec{Native: d.spec(u.scheme == "mongodb+srv"), Params: params, Secrets: []string{pw, d.password}, Probe: plainHello}
	cfg, err := core.Resolve(spec, opts...)
	if err != nil {
		return nil, nil, err
	}
	co := options.Client().ApplyURI(u.String())
	if err := co.Validate(); err != nil {
		return nil, nil, core.Redact(core.InvalidOption("uri", "invalid MongoDB URI", err), pw)
	}
	co.DisableOCSPEndpointCheck, co.DisableCertificateRevocationCheck = d.noEndpoint, d.noRevocation
	dl := install(co, cfg, spec, opts, nil)
	return co, dl, nil
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
// reads them all.
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
	if err := preflight(ctx, d, c.Hosts); err != nil {
		return nil, err
	}
	// So that the first operation after a restart gets a new connection,
	// not a pooled one the server closed (see live.go).
	d.live = newLive()
	c.Monitor = hidePings(c.Monitor)
	client, err := mongo.Connect(c)
	if err != nil {
		return nil, err
	}
	d.live.attach(client)
	return client, nil
}

// fromOptions copies co and installs the TLS dialer on the copy.
func fromOptions(co *options.ClientOptions, opts []sslconn.Option) (*options.ClientOptions, *dialer, error) {
	if co == nil {
		return nil, nil, core.InvalidOption("options", "the *options.ClientOptions is nil", nil)
	}
	c := *co // the caller's stays as it is; only c's TLSConfig and Dialer change
	var pw string
	if c.Auth != nil {
		pw = c.Auth.Password
	}
	if err := c.Validate(); err != nil {
		return nil, nil, core.Redact(core.InvalidOption("options", "invalid client options", err), pw)
	}
	if prev, ok := c.Dialer.(*dialer); ok {
		// Options from ClientOptions (or a copy made here): the TLS
		// settings are the dialer's.
		if c.TLSConfig != nil {
			return nil, nil, core.InvalidOption("TLSConfig", "these options come from mongossl.ClientOptions, whose dialer does TLS: set TLS with the URI's parameters or sslconn options, not with TLSConfig", nil)
		}
		spec := prev.spec
		spec.Secrets = append(append([]string(nil), spec.Secrets...), pw)
		if len(opts) == 0 {
			return &c, install(&c, prev.cfg, spec, prev.opts, prev.user), nil
		}
		all := append(append([]sslconn.Option(nil), prev.opts...), opts...)
		cfg, err := core.Resolve(spec, all...)
		if err != nil {
			return nil, nil, err
		}
		return &c, install(&c, cfg, spec, all, prev.user), nil
	}
	spec := core.Spec{TLS: c.TLSConfig, Secrets: []string{pw}, Probe: plainHello}
	cfg, err := core.Resolve(spec, opts...)
	if err != nil {
		return nil, nil, err
	}
	return &c, install(&c, cfg, spec, opts, c.Dialer), nil
}

// install makes co's connections go through a TLS dialer for cfg: TLS is
// the dialer's, the driver's own is switched off. spec and opts are what cfg
// was resolved from, user the user's ContextDialer or nil.
func install(co *options.ClientOptions, cfg *core.Config, spec core.Spec, opts []sslconn.Option, user options.ContextDialer) *dialer {
	d := &dialer{
		cfg: cfg, spec: spec, opts: append([]sslconn.Option(nil), opts...), user: user,
		revocation: co.DisableCertificateRevocationCheck == nil || !*co.DisableCertificateRevocationCheck,
	}
	co.TLSConfig = nil // TLS is the dialer's (mongodb+srv turns it on by default)
	co.Dialer = d
	return d
}

// dialer is the ContextDialer the package installs.
type dialer struct {
	cfg *core.Config
	// user is the ContextDialer set on the options before, which makes the
	// TCP connection unless sslconn.WithDialer was given; nil: the Config's.
	user options.ContextDialer
	// revocation: check stapled OCSP responses in VERIFY_CA and
	// VERIFY_IDENTITY (tlsDisableCertificateRevocationCheck turns it off).
	revocation bool
	// What cfg was resolved from, for ConnectOptions with more options.
	// spec holds passwords: the dialer prints as String says.
	spec core.Spec
	opts []sslconn.Option
	// live watches the connections of a client made by ConnectOptions;
	// nil for options handed to the user.
	live *live
}

// DialContext dials every host, seed or discovered from a replica set's
// hello, in the same mode, verified against the name it is reached by.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var raw core.DialFunc
	if d.user != nil && d.cfg.UserDialer() == nil {
		raw = d.user.DialContext
	}
	var dials *rawDials
	if d.live != nil {
		// Record the TCP connections, to watch the one under c.
		if raw == nil {
			raw = d.cfg.Dialer()
		}
		dials = &rawDials{}
		raw = dials.wrap(raw)
		defer dials.find(nil)
	}
	c, err := d.cfg.Dial(ctx, network, addr, raw)
	if err != nil {
		return nil, err
	}
	if err := d.checkRevocation(c, addr); err != nil {
		c.Close()
		return nil, err
	}
	if d.live != nil {
		return d.live.track(c, dials.find(c), addr), nil
	}
	return c, nil
}

// String describes the dialer without the passwords it keeps, so that
// printing the options (with %v, %+v or %#v) cannot leak them.
func (d *dialer) String() string {
	return fmt.Sprintf("mongossl.dialer{%s user-dialer=%t revocation-check=%t}", d.cfg, d.user != nil, d.revocation)
}

// GoString is String, for %#v.
func (d *dialer) GoString() string { return d.String() }

// Connect returns a connected client. Before handing the client over, it
// opens one connection to the seed hosts, so that an error retrying cannot
// fix (unknown authority, host name mismatch, expired certificate, a server
// without TLS under REQUIRED and stronger) comes back now, as the matching
// sslconn error, rather than as a server-selection timeout 30 s later; a
// server that is restarting is waited for up to the retry budget and ctx.
// It is ClientOptions, then ConnectOptions.
func Connect(ctx context.Context, rawURI string, opts ...sslconn.Option) (*mongo.Client, error) {
	co, err := ClientOptions(rawURI, opts...)
	if err != nil {
		return nil, err
	}
	return ConnectOptions(ctx, co)
}

// preflight dials the seeds in parallel and succeeds as soon as one does.
func preflight(ctx context.Context, d *dialer, hosts []string) error {
	if len(hosts) == 0 {
		return nil // mongodb+srv: the driver resolves the hosts
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(hosts))
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := hello(ctx, d, h)
			if err == nil {
				cancel()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(first, context.Canceled) {
			first = err
		}
	}
	return first
}

// hello opens one connection to host and exchanges a hello with it: a
// server that rejects the connection only once it sees the first message
// (a TLS port reading plaintext, a TLS 1.3 server wanting a client
// certificate) does so here, where the error is still ours to explain. It
// dials through d, as the driver will: the user's dialer, the OCSP check.
func hello(ctx context.Context, d *dialer, host string) error {
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(d.cfg.HandshakeTimeout()))
	}
	body, err := bson.Marshal(bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	if err != nil {
		return err
	}
	// OP_MSG: header (length, requestID, responseTo, opCode 2013), flagBits,
	// one kind-0 section holding the command document.
	msg := binary.LittleEndian.AppendUint32(nil, uint32(16+4+1+len(body)))
	msg = binary.LittleEndian.AppendUint32(msg, 1)
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = binary.LittleEndian.AppendUint32(msg, 2013)
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = append(msg, 0)
	msg = append(msg, body...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var header [16]byte
	if _, err := io.ReadFull(c, header[:]); err != nil {
		return err
	}
	return nil
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
		return sslconn.Status{}, errors.New("mongossl: the client's connection was not made by mongossl (use mongossl.Connect, ConnectOptions or ClientOptions)")
	}
	return st, nil
}
