package redisssl

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

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
	raw sslconn.DialFunc // nil: the Config's (WithDialer, else a net.Dialer)
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
	if user != nil && cfg.Settings().Dialer == nil {
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

// newClient is every standalone client: ro (the constructor's own copy)
// gets the dialer and the defaults the user did not set.
func newClient(ro *redis.Options, cfg *core.Config, set userSet) *redis.Client {
	// TLS is the dialer's: a TLSConfig set was read into cfg, and the one
	// go-redis's parser makes for rediss:// is not the user's.
	ro.TLSConfig = nil
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

func newClusterClient(co *redis.ClusterOptions, cfg *core.Config, set userSet) *redis.ClusterClient {
	co.TLSConfig = nil // the dialer's (see newClient)
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

// tuneFailover installs the dialer and defaults on fo.
func tuneFailover(fo *redis.FailoverOptions, cfg *core.Config, set userSet) *dialer {
	fo.TLSConfig = nil // the dialer's (see newClient)
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
	d.owner.c.Store(c)
	return c
}
