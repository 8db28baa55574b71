package redisssl

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
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
	if err := param.CheckLength(raw); err != nil {
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
	p.spec.Probe, p.spec.Engine = ping, "redis"
	var keys []string
	for k, v := range q {
		if param.Is(k) {
			p.spec.Params[k] = v
			q.Del(k)
		} else {
			keys = append(keys, k)
		}
	}
	if err := param.CheckUnknown(keys, func(k string) bool { return k == "skip_verify" }); err != nil {
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
	// As NewClient reads it: the sslconn command connects with NewClient.
	core.RegisterResolver("redis", func(rawURL string, opts ...sslconn.Option) (*core.Resolved, error) {
		return fromURL(rawURL, opts, redis.ParseURL, func(o *redis.Options, cfg *core.Config, _ userSet) *core.Resolved {
			return &core.Resolved{Config: cfg, Addrs: []string{o.Addr}}
		})
	})
}

// fromURL is every URL constructor: the URL is parsed, read by go-redis's
// parser for the kind of client (read), resolved, and built as the
// options constructors build (build).
func fromURL[O, C any](rawURL string, opts []sslconn.Option, read func(string) (*O, error), build func(*O, *core.Config, userSet) C) (c C, err error) {
	p, err := parse(rawURL)
	if err != nil {
		return c, err
	}
	o, err := read(p.url)
	if err != nil {
		return c, invalidURL(err, p.spec.Secrets...)
	}
	cfg, err := p.config(opts)
	if err != nil {
		return c, err
	}
	return build(o, cfg, userSet{p.hasRetries, p.hasDialTimout}), nil
}

func (p *parsed) config(opts []sslconn.Option) (*core.Config, error) {
	cfg, err := core.Resolve(p.spec, opts...)
	if err != nil {
		return nil, p.conflictHint(err, opts)
	}
	return cfg, nil
}

// conflictHint adds to a conflict between the URL's TLS setting and an
// explicit mode (core.Resolve's conflict rule) the change to the URL that resolves it.
func (p *parsed) conflictHint(err error, opts []sslconn.Option) error {
	var se *sslconn.Error
	if p.spec.Native.Mode == 0 || !errors.As(err, &se) || se.Kind != sslconn.ErrInvalidOption ||
		se.Option != param.Mode || se.Hint != "" {
		return err
	}
	// The explicit mode alone, without the URL's setting.
	alone, aerr := core.Resolve(core.Spec{Params: p.spec.Params, Secrets: p.spec.Secrets, Engine: "redis"}, opts...)
	if aerr != nil {
		return err
	}
	cp := *se
	switch {
	case alone.Settings().Mode == sslconn.Disabled:
		cp.Hint = "use redis:// for plaintext, or drop ssl-mode=DISABLED"
	case alone.Settings().Mode >= sslconn.VerifyCA:
		cp.Hint = "drop skip_verify=true to verify, or use ssl-mode=REQUIRED"
	default:
		return err
	}
	return &cp
}

// userSet records which of the settings the constructors default the user
// chose: a URL's max_retries= and dial_timeout=, or the non-zero fields of
// go-redis's options.
type userSet struct{ retries, dialTimeout bool }

func nilOptions(what string) error {
	return core.InvalidOption("options", "the "+what+" is nil", nil)
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

// fromDriverOptions is every constructor for options built in code: o is
// copied (the caller's is never changed), read (what it says for the mode,
// and which defaults it sets), resolved and built.
func fromDriverOptions[O, C any](o *O, opts []sslconn.Option, read func(*O) (core.Spec, userSet), build func(*O, *core.Config, userSet) C) (c C, err error) {
	if o == nil {
		return c, nilOptions(fmt.Sprintf("%T", o))
	}
	cp := *o
	spec, set := read(o)
	cfg, err := core.Resolve(spec, opts...)
	if err != nil {
		return c, err
	}
	return build(&cp, cfg, set), nil
}

// readOptions, readClusterOptions and readFailoverOptions read go-redis's
// options for fromDriverOptions: the TLSConfig and the passwords, and which
// of the settings the constructors default are set (non-zero).
func readOptions(o *redis.Options) (core.Spec, userSet) {
	return core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password}, Probe: ping, Engine: "redis"}, userSet{o.MaxRetries != 0, o.DialTimeout != 0}
}

func readClusterOptions(o *redis.ClusterOptions) (core.Spec, userSet) {
	return core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password}, Probe: ping, Engine: "redis"}, userSet{o.MaxRetries != 0, o.DialTimeout != 0}
}

func readFailoverOptions(o *redis.FailoverOptions) (core.Spec, userSet) {
	return core.Spec{TLS: o.TLSConfig, Secrets: []string{o.Password, o.SentinelPassword}, Probe: ping, Engine: "redis"},
		userSet{o.MaxRetries != 0, o.DialTimeout != 0}
}

// dialBudget is go-redis's per-dial timeout: long enough for the dialer's
// own retrying across a restart. go-redis applies it to the whole of one
// call of the dialer (DialerRetries is 1), retries included, so it cannot
// be a per-attempt timeout; it is only a cap: the retrying ends with the
// commands waiting for it and with Close (see owner); the handshake
// timeout, and the default dialer's connect timeout, bound each attempt.
func dialBudget(cfg *core.Config) time.Duration {
	if b := cfg.Settings().RetryBudget; b > 0 {
		return b + cfg.Settings().HandshakeTimeout
	}
	return cfg.Settings().HandshakeTimeout + 10*time.Second
}

func invalidURL(err error, passwords ...string) error {
	return core.Redact(core.InvalidOption("url", "invalid Redis URL", err), passwords...)
}
