package redisssl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// parsed is what a URL said, once our parameters are taken out.
type parsed struct {
	url           string // for go-redis, without ssl-* parameters
	spec          core.Spec
	hasRetries    bool // the URL sets max_retries: the caller opted in
	hasDialTimout bool
}

func parse(raw string) (*parsed, error) {
	if err := core.CheckLength(raw); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, password and all: say less.
		return nil, core.InvalidOption("url", "invalid Redis URL (expected redis://[user:password@]host:port[/db][?params])", nil)
	}
	p := &parsed{}
	if u.User != nil {
		pw, _ := u.User.Password()
		p.spec.Secrets = append(p.spec.Secrets, pw)
	}
	q := u.Query()
	// A Sentinel URL carries the master's password as a parameter.
	p.spec.Secrets = append(p.spec.Secrets, q.Get("password"))
	p.spec.Params = url.Values{}
	p.spec.Probe = ping
	var keys []string
	for k, v := range q {
		if core.IsParam(k) {
			p.spec.Params[k] = v
			q.Del(k)
		} else {
			keys = append(keys, k)
		}
	}
	if err := core.CheckUnknown(keys, func(k string) bool { return k == "skip_verify" }); err != nil {
		return nil, core.Redact(err, p.spec.Secrets...)
	}
	switch u.Scheme {
	case "rediss":
		p.spec.Native = core.Native{Mode: sslconn.VerifyIdentity, Setting: "rediss://"}
		// go-redis's reading of the value: true/1, false/0/empty, else an error.
		switch v := q.Get("skip_verify"); v {
		case "true", "1":
			p.spec.Native = core.Native{Mode: sslconn.Required, Setting: "rediss://...?skip_verify=true"}
		case "false", "0", "":
		default:
			return nil, core.InvalidOption("skip_verify", fmt.Sprintf("skip_verify=%s is no boolean: use true or false", v), nil)
		}
	case "redis":
		// Meaningless without TLS.
	default:
		return nil, core.InvalidOption("url", fmt.Sprintf("unsupported scheme %q: use redis:// or rediss://", u.Scheme), nil)
	}
	// TLS is the dialer's, and go-redis's ParseClusterURL rejects skip_verify.
	q.Del("skip_verify")
	p.hasRetries = q.Has("max_retries")
	p.hasDialTimout = q.Has("dial_timeout")
	u.RawQuery = q.Encode()
	p.url = u.String()
	return p, nil
}

func init() {
	core.RegisterResolver("redis", func(rawURL string, opts ...sslconn.Option) (*core.Config, error) {
		p, err := parse(rawURL)
		if err != nil {
			return nil, err
		}
		return p.config(opts)
	})
}

func (p *parsed) config(opts []sslconn.Option) (*core.Config, error) {
	cfg, err := core.Resolve(p.spec, opts...)
	if err != nil {
		return nil, p.conflictHint(err, opts)
	}
	return cfg, nil
}

// conflictHint adds to a conflict between the URL's TLS setting and an
// explicit mode (core.Conflict) the change to the URL that resolves it.
func (p *parsed) conflictHint(err error, opts []sslconn.Option) error {
	var se *sslconn.Error
	if p.spec.Native.Mode == 0 || !errors.As(err, &se) || se.Kind != sslconn.ErrInvalidOption ||
		se.Option != core.ParamMode || se.Hint != "" {
		return err
	}
	// The explicit mode alone, without the URL's setting.
	alone, aerr := core.Resolve(core.Spec{Params: p.spec.Params, Secrets: p.spec.Secrets}, opts...)
	if aerr != nil {
		return err
	}
	cp := *se
	switch {
	case alone.ExplicitMode() == sslconn.Disabled:
		cp.Hint = "use redis:// for plaintext, or drop ssl-mode=DISABLED"
	case alone.ExplicitMode() >= sslconn.VerifyCA:
		cp.Hint = "drop skip_verify=true to verify, or use ssl-mode=REQUIRED"
	default:
		return err
	}
	return &cp
}

// dialer is go-redis's Dialer for one client (and its cluster nodes or
// Sentinel-announced servers): every node, seed or discovered through
// CLUSTER SLOTS, MOVED or ASK, is dialled and verified in the same mode
// against the name it is reached by (or the ssl-server-name override).
// The TCP connection under TLS is made by raw: the Dialer the user set on
// go-redis's options, unless sslconn.WithDialer was given, which wins.
//
// go-redis v9 dials in a goroutine of its own, on a context detached from
// the command's: when the command's context ends first, the command gets a
// bare context error and the dial goes on. The dialer therefore keeps
// track of the dials in progress, so that retryHook can report such an end
// as sslconn.ErrUnavailable with the address, the attempts and the last
// cause, as core.Config.Retry does when it sees the caller's context.
//
// It retries only while a command waits on an open client (see owner).
type dialer struct {
	cfg *core.Config
	raw core.DialFunc // nil: the Config's (WithDialer, else a net.Dialer)
	// owner is the standalone or failover client the dialer serves, once
	// built; retryHook tags its dials with it. A cluster's nodes tag theirs
	// with their own.
	owner *owner
	mu    sync.Mutex
	cur   map[*dialing]struct{}
}

// dialing is one dial in progress, across its attempts.
type dialing struct {
	addr      string
	start     time.Time
	attempts  int   // started
	last      error // of the last attempt that ended
	inAttempt atomic.Bool
	stop      context.CancelCauseFunc // ends the dial, saying why
}

// newDialer returns the dialer for cfg over the go-redis Dialer the user
// set (nil if none).
func newDialer(cfg *core.Config, user func(ctx context.Context, network, addr string) (net.Conn, error)) *dialer {
	d := &dialer{cfg: cfg, owner: &owner{}, cur: map[*dialing]struct{}{}}
	if user != nil && cfg.UserDialer() == nil {
		d.raw = user
	}
	return d
}

// dial is core.Config.Dial, attempt by attempt on the record, for the
// client whose hooks tagged ctx (see owner): after a failed attempt it
// retries only while that client is open and a command of it waits for a
// connection, and it stops, between attempts or in one, when the client is
// closed (redis.ErrClosed). A dial of no client (a Sentinel's, or one
// made before the client was built) gets one attempt.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if isAskClosed(ctx) {
		return nil, errAskedClosed
	}
	o, _ := ctx.Value(ownerKey{}).(*owner)
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	st := &dialing{addr: addr, start: time.Now(), stop: stop}
	d.mu.Lock()
	d.cur[st] = struct{}{}
	d.mu.Unlock()
	defer func() {
		o.forget(st)
		d.mu.Lock()
		delete(d.cur, st)
		d.mu.Unlock()
	}()
	var conn net.Conn
	err := d.cfg.Retry(ctx, addr, func(ctx context.Context) error {
		d.mu.Lock()
		retry := st.attempts > 0
		d.mu.Unlock()
		if retry && o.closed() {
			// Closed since the watch last looked: no new attempt.
			stop(errOwnerClosed)
			return ctx.Err()
		}
		st.inAttempt.Store(true)
		d.mu.Lock()
		st.attempts++
		d.mu.Unlock()
		c, err := d.cfg.DialMode(ctx, d.cfg.Mode(), network, addr, d.raw)
		d.mu.Lock()
		st.last = err
		d.mu.Unlock()
		st.inAttempt.Store(false)
		conn = c
		if err != nil && ctx.Err() == nil && !core.IsPermanent(err) {
			// A retry would follow: only for a command waiting on an
			// open client, and watched from now on.
			if why := o.stopReason(); why != nil {
				stop(why)
			} else {
				o.watch(st)
			}
		}
		return err
	})
	if err != nil {
		switch cause := context.Cause(ctx); cause {
		case errOwnerClosed:
			return nil, redis.ErrClosed
		case errNotWaited, errNoOwner:
			return nil, d.notRetried(st, cause)
		}
	}
	return conn, err
}

// explain returns err, unless it is ctx's end reported while a dial of
// this client was in progress (go-redis waited for a new connection): then
// the sslconn.ErrUnavailable error that says so, naming the address, the
// attempts so far and the last cause.
func (d *dialer) explain(ctx context.Context, err error) error {
	cerr := ctx.Err()
	var se *sslconn.Error
	if err == nil || cerr == nil || !errors.Is(err, cerr) || errors.As(err, &se) {
		return err
	}
	d.mu.Lock()
	var oldest *dialing
	for st := range d.cur {
		if oldest == nil || st.start.Before(oldest.start) {
			oldest = st
		}
	}
	if oldest == nil {
		d.mu.Unlock()
		return err
	}
	addr, attempts, last, start := oldest.addr, oldest.attempts, oldest.last, oldest.start
	d.mu.Unlock()
	return d.cfg.ContextEnded(addr, attempts, time.Since(start), cerr, last)
}

// userSet records which of the settings the constructors default the user
// chose: a URL's max_retries= and dial_timeout=, or the non-zero fields of
// go-redis's options.
type userSet struct{ retries, dialTimeout bool }

func nilOptions(what string) error {
	return core.InvalidOption("options", "the "+what+" is nil", nil)
}

// NewClient returns a go-redis client for a redis:// or rediss:// URL with
// the shared ssl-* parameters (see package doc).
func NewClient(rawURL string, opts ...sslconn.Option) (*redis.Client, error) {
	p, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	ro, err := redis.ParseURL(p.url)
	if err != nil {
		return nil, invalidURL(err, p.spec.Secrets...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	// The URL's TLS setting was read by parse: rediss:// gave go-redis a
	// TLSConfig that is not the user's.
	ro.TLSConfig = nil
	return newClient(ro, cfg, userSet{p.hasRetries, p.hasDialTimout}), nil
}

// NewClientFromOptions returns a go-redis client for options built in code.
// o is copied, never changed, and what it sets keeps working: OnConnect,
// CredentialsProvider, CredentialsProviderContext,
// StreamingCredentialsProvider, Limiter, Protocol, pool settings,
// MaintNotificationsConfig and the rest, and hooks added to the client
// later. Its Dialer, if set, makes the TCP connection the TLS runs over
// (sslconn.WithDialer, if also given, wins). Its TLSConfig maps onto a mode
// as rediss:// does: set means VERIFY_IDENTITY, or REQUIRED with
// InsecureSkipVerify; nil says nothing (PREFERRED, or VERIFY_CA with a CA).
// Its RootCAs, first certificate, ServerName, MinVersion, MaxVersion and
// CipherSuites become the equivalent options, which opts override; a mode
// in opts that contradicts it (InsecureSkipVerify and VERIFY_CA, say) is an
// sslconn.ErrInvalidOption error naming both.
//
// As for URLs, MaxRetries becomes -1 (no command re-sent after its
// connection died) unless set, DialTimeout covers the retry budget unless
// set, and DialerRetries is 1: the dialer retries, within the retry budget.
func NewClientFromOptions(o *redis.Options, opts ...sslconn.Option) (*redis.Client, error) {
	if o == nil {
		return nil, nilOptions("*redis.Options")
	}
	ro := *o
	cfg, err := core.Resolve(core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password}, Probe: ping}, opts...)
	if err != nil {
		return nil, err
	}
	ro.TLSConfig = nil // read into cfg
	return newClient(&ro, cfg, userSet{o.MaxRetries != 0, o.DialTimeout != 0}), nil
}

// newClient is every standalone client: ro (the constructor's own copy)
// gets the dialer and the defaults the user did not set.
func newClient(ro *redis.Options, cfg *core.Config, set userSet) *redis.Client {
	d := newDialer(cfg, ro.Dialer)
	ro.Dialer = d.dial
	ro.DialerRetries = 1 // the dialer retries, with the core's budget and backoff
	if !set.dialTimeout {
		ro.DialTimeout = dialBudget(cfg)
	}
	if !set.retries {
		ro.MaxRetries = -1 // never re-send a command whose outcome is unknown
	}
	ro.MaintNotificationsConfig = maintConfig(ro.MaintNotificationsConfig, ro.Addr, cfg)
	c := redis.NewClient(ro)
	c.AddHook(retryHook{cfg, d})
	d.owner.c.Store(c)
	return c
}

// maintConfig is mc for a client of addr whose connections the dialer
// makes. Maintenance notifications work through it: go-redis dials the
// endpoint a MOVING notification names through the client's dial hooks and
// Dialer, so the new connection is made and verified like any other. Only
// one thing go-redis decides from its own TLSConfig, which the dialer
// leaves nil: the endpoint type it asks the server to announce, an IP
// without TLS, a name with TLS (certificates name hosts, rarely IPs). In
// the modes that may encrypt, an endpoint type left to auto-detection is
// therefore detected as go-redis does with TLS on. Everything else in mc,
// nil included, is left as it is.
func maintConfig(mc *maintnotifications.Config, addr string, cfg *core.Config) *maintnotifications.Config {
	if cfg.Mode() == sslconn.Disabled {
		return mc
	}
	if mc != nil && (mc.Mode == maintnotifications.ModeDisabled ||
		(mc.EndpointType != "" && mc.EndpointType != maintnotifications.EndpointTypeAuto)) {
		return mc
	}
	var c maintnotifications.Config
	if mc != nil {
		c = *mc
	}
	c.EndpointType = maintnotifications.DetectEndpointType(addr, true)
	return &c
}

// NewClusterClient returns a go-redis cluster client for a URL whose seed
// addresses are the host and repeated addr= parameters, as go-redis's
// ParseClusterURL reads them, plus the shared ssl-* parameters.
func NewClusterClient(rawURL string, opts ...sslconn.Option) (*redis.ClusterClient, error) {
	p, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	co, err := redis.ParseClusterURL(p.url)
	if err != nil {
		return nil, invalidURL(err, p.spec.Secrets...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	co.TLSConfig = nil // read by parse
	return newClusterClient(co, cfg, userSet{p.hasRetries, p.hasDialTimout}), nil
}

// NewClusterClientFromOptions is NewClientFromOptions for a cluster: o is
// copied and kept as NewClientFromOptions keeps redis.Options, every node
// is dialled and verified as NewClusterClient's are, and a NewClient
// function set in o still builds the node clients (the package adds a hook
// to each). MaxRedirects is kept: MOVED and ASK are followed.
func NewClusterClientFromOptions(o *redis.ClusterOptions, opts ...sslconn.Option) (*redis.ClusterClient, error) {
	if o == nil {
		return nil, nilOptions("*redis.ClusterOptions")
	}
	co := *o
	cfg, err := core.Resolve(core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password}, Probe: ping}, opts...)
	if err != nil {
		return nil, err
	}
	co.TLSConfig = nil
	return newClusterClient(&co, cfg, userSet{o.MaxRetries != 0, o.DialTimeout != 0}), nil
}

func newClusterClient(co *redis.ClusterOptions, cfg *core.Config, set userSet) *redis.ClusterClient {
	d := newDialer(cfg, co.Dialer)
	co.Dialer = d.dial
	co.DialerRetries = 1
	if !set.dialTimeout {
		co.DialTimeout = dialBudget(cfg)
	}
	if !set.retries {
		co.MaxRetries = -1 // MOVED and ASK are still followed: MaxRedirects
	}
	user := co.NewClient
	co.NewClient = func(o *redis.Options) *redis.Client {
		// Each node asks for the endpoint type of its own address.
		o.MaintNotificationsConfig = maintConfig(o.MaintNotificationsConfig, o.Addr, cfg)
		var n *redis.Client
		if user != nil {
			n = user(o)
		} else {
			n = redis.NewClient(o)
		}
		if n != nil {
			n.AddHook(outcomeHook{newOwner(n)})
		}
		return n
	}
	c := redis.NewClusterClient(co)
	c.AddHook(retryHook{cfg, d})
	return c
}

// NewFailoverClient returns a go-redis client for a Redis behind Sentinel,
// for a URL as go-redis's ParseFailoverURL reads it: the host (and repeated
// addr= parameters) are Sentinels, the userinfo is the Sentinels' password,
// master_name= names the master and password= is its password; plus the
// shared ssl-* parameters. Sentinels, and the master and replicas they
// announce, are all dialled and verified in the same mode. Sentinel
// announces by IP: VERIFY_IDENTITY needs IP SANs, or ssl-server-name.
//
// On a failover, writes the old master refuses as a replica (READONLY) were
// not executed and are retried, with the core's budget and backoff, until
// the client has moved to the new master.
func NewFailoverClient(rawURL string, opts ...sslconn.Option) (*redis.Client, error) {
	p, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	fo, err := redis.ParseFailoverURL(p.url)
	if err != nil {
		return nil, invalidURL(err, p.spec.Secrets...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	fo.TLSConfig = nil // read by parse
	return newFailoverClient(fo, cfg, userSet{p.hasRetries, p.hasDialTimout}), nil
}

// NewFailoverClientFromOptions is NewClientFromOptions for Redis behind
// Sentinel: o is copied and kept, and Sentinels, master and replicas are
// dialled and verified as NewFailoverClient's are (o.Dialer under TLS for
// all of them). Its TLSConfig, if set, is read for all of them too, as
// go-redis uses it: a ServerName in it is the name every one is verified
// against.
func NewFailoverClientFromOptions(o *redis.FailoverOptions, opts ...sslconn.Option) (*redis.Client, error) {
	if o == nil {
		return nil, nilOptions("*redis.FailoverOptions")
	}
	fo := *o
	cfg, err := resolveFailover(o, opts)
	if err != nil {
		return nil, err
	}
	fo.TLSConfig = nil
	return newFailoverClient(&fo, cfg, userSet{o.MaxRetries != 0, o.DialTimeout != 0}), nil
}

func resolveFailover(o *redis.FailoverOptions, opts []sslconn.Option) (*core.Config, error) {
	return core.Resolve(core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password, o.SentinelPassword}, Probe: ping}, opts...)
}

// tuneFailover installs the dialer and defaults on fo.
func tuneFailover(fo *redis.FailoverOptions, cfg *core.Config, set userSet) *dialer {
	d := newDialer(cfg, fo.Dialer)
	fo.Dialer = d.dial
	fo.DialerRetries = 1
	if !set.dialTimeout {
		fo.DialTimeout = dialBudget(cfg)
	}
	if !set.retries {
		fo.MaxRetries = -1
	}
	return d
}

func newFailoverClient(fo *redis.FailoverOptions, cfg *core.Config, set userSet) *redis.Client {
	d := tuneFailover(fo, cfg, set)
	c := redis.NewFailoverClient(fo)
	c.AddHook(retryHook{cfg, d})
	c.AddHook(outcomeErrors{})
	d.owner.c.Store(c)
	return c
}

// NewUniversalClientFromOptions returns the client go-redis's
// NewUniversalClient would, built as this package's constructors build
// them: a failover client when MasterName is set (a cluster client over
// Sentinel's master and replicas with RouteByLatency, RouteRandomly or
// IsClusterMode), a cluster client for several addresses or IsClusterMode,
// else a standalone client. o is copied, never changed; see
// NewClientFromOptions for what is kept and how TLSConfig and Dialer are read.
func NewUniversalClientFromOptions(o *redis.UniversalOptions, opts ...sslconn.Option) (redis.UniversalClient, error) {
	if o == nil {
		return nil, nilOptions("*redis.UniversalOptions")
	}
	uo := *o // Cluster() and Failover() fill in an empty Addrs
	uo.Addrs = append([]string(nil), o.Addrs...)
	switch {
	case uo.MasterName != "" && (uo.RouteByLatency || uo.RouteRandomly || uo.IsClusterMode):
		fo := uo.Failover()
		cfg, err := resolveFailover(fo, opts)
		if err != nil {
			return nil, err
		}
		fo.TLSConfig = nil
		d := tuneFailover(fo, cfg, userSet{o.MaxRetries != 0, o.DialTimeout != 0})
		c := redis.NewFailoverClusterClient(fo)
		// Its node clients are built inside go-redis; they are created
		// lazily, on the first command, so every one gets the hook.
		c.OnNewNode(func(n *redis.Client) { n.AddHook(outcomeHook{newOwner(n)}) })
		c.AddHook(retryHook{cfg, d})
		return c, nil
	case uo.MasterName != "":
		return universal(NewFailoverClientFromOptions(uo.Failover(), opts...))
	case len(uo.Addrs) > 1 || uo.IsClusterMode:
		return universal(NewClusterClientFromOptions(uo.Cluster(), opts...))
	default:
		return universal(NewClientFromOptions(uo.Simple(), opts...))
	}
}

// universal returns c as a redis.UniversalClient, and a nil interface, not
// a nil pointer in one, with an error.
func universal[C redis.UniversalClient](c C, err error) (redis.UniversalClient, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialBudget is go-redis's per-dial timeout: long enough for the dialer's
// own retrying across a restart. go-redis applies it to the whole of one
// call of the dialer (DialerRetries is 1), retries included, so it cannot
// be a per-attempt timeout; it is only a cap: the retrying ends with the
// commands waiting for it and with Close (see owner); the handshake
// timeout, and the default dialer's connect timeout, bound each attempt.
func dialBudget(cfg *core.Config) time.Duration {
	if b := cfg.RetryBudget(); b > 0 {
		return b + cfg.HandshakeTimeout()
	}
	return cfg.HandshakeTimeout() + 10*time.Second
}

func invalidURL(err error, passwords ...string) error {
	return core.Redact(core.InvalidOption("url", "invalid Redis URL", err), passwords...)
}

// Verify reports the TLS state of a live connection of the client: the one
// that carries an ECHO of a random token, as the client's dialer made it.
// It asks the connection itself, not the server's view of the client's
// address, so it works through proxies and NAT. For a cluster client it
// checks a connection to every master and reports a plaintext one if any.
func Verify(ctx context.Context, c redis.UniversalClient) (sslconn.Status, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var (
			mu    sync.Mutex
			worst *sslconn.Status
		)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			st, err := verifyOne(ctx, node)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if worst == nil || (worst.Encrypted && !st.Encrypted) {
				worst = &st
			}
			return nil
		})
		if err != nil || worst == nil {
			return sslconn.Status{}, err
		}
		return *worst, nil
	}
	return verifyOne(ctx, c)
}

func verifyOne(ctx context.Context, c redis.Cmdable) (sslconn.Status, error) {
	p := core.NewProbe()
	defer p.Close()
	if err := c.Echo(ctx, p.Token()).Err(); err != nil {
		return sslconn.Status{}, err
	}
	st, ok := p.Status()
	if !ok {
		return sslconn.Status{}, errors.New("redisssl: the client's connection was not made by redisssl (use redisssl.NewClient or its siblings)")
	}
	return st, nil
}
