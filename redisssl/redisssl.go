package redisssl

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/sslconn"
)

// parsed is what a URL said, once our parameters are taken out.
type parsed struct {
	url           string   // for go-redis, without ssl-* parameters
	passwords     []string // only to keep them out of error texts
	native        sslconn.Mode
	params        sslconn.Params
	hasRetries    bool // the URL sets max_retries: the caller opted in
	hasDialTimout bool
}

func parse(raw string) (*parsed, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, password and all: say less.
		return nil, &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "url", Detail: "invalid Redis URL (expected redis://[user:password@]host:port[/db][?params])"}
	}
	p := &parsed{}
	if u.User != nil {
		pw, _ := u.User.Password()
		p.passwords = append(p.passwords, pw)
	}
	q := u.Query()
	// A Sentinel URL carries the master's password as a parameter.
	p.passwords = append(p.passwords, q.Get("password"))
	if p.params, err = sslconn.TakeParams(q); err != nil {
		return nil, sslconn.Redact(err, p.passwords...)
	}
	switch u.Scheme {
	case "rediss":
		p.native = sslconn.VerifyIdentity
		if v, _ := strconv.ParseBool(q.Get("skip_verify")); v {
			p.native = sslconn.Required
		}
		if p.params.Mode == sslconn.Disabled {
			return nil, &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "ssl-mode",
				Detail: "rediss:// asks for TLS but ssl-mode=DISABLED; use redis:// for plaintext"}
		}
	case "redis":
		q.Del("skip_verify") // meaningless without TLS; go-redis would reject it
	default:
		return nil, &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "url",
			Detail: fmt.Sprintf("unsupported scheme %q: use redis:// or rediss://", u.Scheme)}
	}
	p.hasRetries = q.Has("max_retries")
	p.hasDialTimout = q.Has("dial_timeout")
	u.RawQuery = q.Encode()
	p.url = u.String()
	return p, nil
}

func (p *parsed) config(opts []sslconn.Option) (*sslconn.Config, error) {
	all := p.params.Options
	if p.native != 0 {
		all = append([]sslconn.Option{sslconn.WithDefaultMode(p.native)}, all...)
	}
	cfg, err := sslconn.New(append(all, opts...)...)
	return cfg, sslconn.Redact(err, p.passwords...)
}

// dialer returns go-redis's Dialer: every node, seed or discovered through
// CLUSTER SLOTS, MOVED or ASK, is dialled and verified in the same mode
// against the name it is reached by (or the ssl-server-name override).
func dialer(cfg *sslconn.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return cfg.Dial(ctx, network, addr, nil)
	}
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
		return nil, invalidURL(err, p.passwords...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	ro.TLSConfig = nil // TLS is the dialer's
	ro.Dialer = dialer(cfg)
	ro.DialerRetries = 1 // the dialer retries, with the core's budget and backoff
	if !p.hasDialTimout {
		ro.DialTimeout = dialBudget(cfg)
	}
	if !p.hasRetries {
		ro.MaxRetries = -1 // never re-send a command whose outcome is unknown
	}
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := redis.NewClient(ro)
	c.AddHook(retryHook{cfg})
	return c, nil
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
		return nil, invalidURL(err, p.passwords...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	co.TLSConfig = nil
	co.Dialer = dialer(cfg)
	co.DialerRetries = 1
	if !p.hasDialTimout {
		co.DialTimeout = dialBudget(cfg)
	}
	if !p.hasRetries {
		co.MaxRetries = -1 // MOVED and ASK are still followed: MaxRedirects
	}
	co.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	co.NewClient = func(o *redis.Options) *redis.Client {
		n := redis.NewClient(o)
		n.AddHook(outcomeHook{})
		return n
	}
	c := redis.NewClusterClient(co)
	c.AddHook(retryHook{cfg})
	return c, nil
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
		return nil, invalidURL(err, p.passwords...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return nil, err
	}
	fo.TLSConfig = nil
	fo.Dialer = dialer(cfg)
	fo.DialerRetries = 1
	if !p.hasDialTimout {
		fo.DialTimeout = dialBudget(cfg)
	}
	if !p.hasRetries {
		fo.MaxRetries = -1
	}
	c := redis.NewFailoverClient(fo)
	c.AddHook(retryHook{cfg})
	return c, nil
}

// dialBudget is go-redis's per-dial timeout: long enough for the dialer's
// own retrying across a restart.
func dialBudget(cfg *sslconn.Config) time.Duration {
	if b := cfg.RetryBudget(); b > 0 {
		return b + cfg.HandshakeTimeout()
	}
	return cfg.HandshakeTimeout() + 10*time.Second
}

func invalidURL(err error, passwords ...string) error {
	return sslconn.Redact(&sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "url", Detail: "invalid Redis URL", Err: err}, passwords...)
}

// Verify reports the TLS state of a live connection of the client: it asks
// the server which connection it is talking to (CLIENT INFO) and looks that
// connection up among those the client's dialer made. For a cluster client
// it checks a connection to every master and reports a plaintext one if any.
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
	info, err := c.ClientInfo(ctx).Result()
	if err != nil {
		return sslconn.Status{}, err
	}
	local := info.Addr // the client's side, as the server sees it
	conn, ok := sslconn.LookupConn(local)
	if !ok {
		return sslconn.Status{}, fmt.Errorf("redisssl: the server's connection %s was not made by a redisssl client", local)
	}
	return conn.Status(), nil
}
