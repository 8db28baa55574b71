package redisssl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
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
		return nil, err
	}
	switch u.Scheme {
	case "rediss":
		p.spec.Native = core.Native{Mode: sslconn.VerifyIdentity, Setting: "rediss://"}
		if v, _ := strconv.ParseBool(q.Get("skip_verify")); v {
			p.spec.Native = core.Native{Mode: sslconn.Required, Setting: "rediss://...?skip_verify=true"}
		}
	case "redis":
		q.Del("skip_verify") // meaningless without TLS; go-redis would reject it
	default:
		return nil, core.InvalidOption("url", fmt.Sprintf("unsupported scheme %q: use redis:// or rediss://", u.Scheme), nil)
	}
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
	return core.Resolve(p.spec, opts...)
}

// dialer returns go-redis's Dialer: every node, seed or discovered through
// CLUSTER SLOTS, MOVED or ASK, is dialled and verified in the same mode
// against the name it is reached by (or the ssl-server-name override).
func dialer(cfg *core.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
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
		return nil, invalidURL(err, p.spec.Secrets...)
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
		return nil, invalidURL(err, p.spec.Secrets...)
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
		return nil, invalidURL(err, p.spec.Secrets...)
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
