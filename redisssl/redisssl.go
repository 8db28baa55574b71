package redisssl

import (
	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// NewClient returns a go-redis client for a redis:// or rediss:// URL with
// the shared ssl-* parameters (see package doc).
func NewClient(rawURL string, opts ...sslconn.Option) (*redis.Client, error) {
	return fromURL(rawURL, opts, redis.ParseURL, newClient)
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
//
// Options carry no URL parameters: redis.ParseURL refuses ssl-mode and the
// other shared parameters ("unexpected option"), so nothing of them can be
// lost on the way here; give such a URL to NewClient, or pass the settings
// as opts.
func NewClientFromOptions(o *redis.Options, opts ...sslconn.Option) (*redis.Client, error) {
	return fromDriverOptions(o, opts, readOptions, newClient)
}

// NewClusterClient returns a go-redis cluster client for a URL whose seed
// addresses are the host and repeated addr= parameters, as go-redis's
// ParseClusterURL reads them, plus the shared ssl-* parameters.
func NewClusterClient(rawURL string, opts ...sslconn.Option) (*redis.ClusterClient, error) {
	return fromURL(rawURL, opts, redis.ParseClusterURL, newClusterClient)
}

// NewClusterClientFromOptions is NewClientFromOptions for a cluster: o is
// copied and kept as NewClientFromOptions keeps redis.Options, every node
// is dialled and verified as NewClusterClient's are, and a NewClient
// function set in o still builds the node clients (the package adds a hook
// to each). MaxRedirects is kept: MOVED and ASK are followed.
func NewClusterClientFromOptions(o *redis.ClusterOptions, opts ...sslconn.Option) (*redis.ClusterClient, error) {
	return fromDriverOptions(o, opts, readClusterOptions, newClusterClient)
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
	return fromURL(rawURL, opts, redis.ParseFailoverURL, newFailoverClient)
}

// NewFailoverClientFromOptions is NewClientFromOptions for Redis behind
// Sentinel: o is copied and kept, and Sentinels, master and replicas are
// dialled and verified as NewFailoverClient's are (o.Dialer under TLS for
// all of them). Its TLSConfig, if set, is read for all of them too, as
// go-redis uses it: a ServerName in it is the name every one is verified
// against.
func NewFailoverClientFromOptions(o *redis.FailoverOptions, opts ...sslconn.Option) (*redis.Client, error) {
	return fromDriverOptions(o, opts, readFailoverOptions, newFailoverClient)
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
		spec, set := readFailoverOptions(fo)
		cfg, err := core.Resolve(spec, opts...)
		if err != nil {
			return nil, err
		}
		d := tuneFailover(fo, cfg, set)
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
