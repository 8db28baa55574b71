package redisssl

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Nothing outlives Close, and nothing retries for nobody.
//
// go-redis dials in goroutines of its own, on contexts detached from the
// commands that wait for the connections; a client's Close neither cancels
// those contexts nor wakes the commands that wait; and go-redis keeps
// dialing in the background for nobody (MinIdleConns, its probe after
// PoolSize failed dials; a PubSub's connection is not counted as waited for
// either). The dialer therefore retries a connection only for its owner, the
// go-redis client whose pool asked for it (the client's first hook tags the
// dial's context with it), while that client is open and a command of it
// waits for a connection from its pools (go-redis counts them in
// PoolStats().PendingRequests, at no cost per command). A dial nobody waits
// for gets one attempt; a dial whose waiting commands all gave up (their
// contexts ended) makes no new attempt; a client closed stops its dials at
// once, and the commands still waiting get redis.ErrClosed.
//
// A dial without an owner gets one attempt too: a Sentinel's (the Sentinel
// clients go-redis makes inside a failover client have no hook of ours,
// and the failover client's Close waits for their lookups before it closes
// anything, so their dials cannot wait for it), or one made while the
// client was being built.
//
// go-redis has no close hook and no closed flag. The dialer asks go-redis
// itself, by its documented rule that an operation on a closed client
// fails with redis.ErrClosed, on an operation that does nothing else: a
// PubSub's Ping fails with ErrClosed before it dials when the client is
// closed, and otherwise asks the client's dial hooks for a connection,
// where ours, the first of them (it is added before any other), answers
// without dialing (see askClosed).

// watchEvery is how often the owner of dials waiting between attempts
// checks whether it is closed and whether a command still waits.
const watchEvery = 50 * time.Millisecond

var (
	// errOwnerClosed, errNotWaited and errNoOwner say why the dialer
	// stopped a dial.
	errOwnerClosed = errors.New("redisssl: the client was closed")
	errNotWaited   = errors.New("redisssl: no command waits for the connection")
	errNoOwner     = errors.New("redisssl: a dial of no client")
	// errAskedClosed answers askClosed's dial.
	errAskedClosed = errors.New("redisssl: closed-client check, not a dial")
)

// askClosedKey marks the context of askClosed's dial.
type askClosedKey struct{}

// askClosedCtx is askClosed's context: marked, and already cancelled, so
// that nothing it reaches can wait.
var askClosedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), askClosedKey{}, true))
	cancel()
	return ctx
}()

// isAskClosed reports whether ctx is askClosed's.
func isAskClosed(ctx context.Context) bool { return ctx.Value(askClosedKey{}) != nil }

// askClosed reports whether c was closed (see above).
func askClosed(c *redis.Client) bool {
	ps := c.Subscribe(askClosedCtx)
	err := ps.Ping(askClosedCtx)
	_ = ps.Close()
	return errors.Is(err, redis.ErrClosed)
}

// ownerKey tags a dial's context with its owner: retryHook's and
// outcomeHook's DialHook set it (a cluster's nodes share the cluster
// client's dialer).
type ownerKey struct{}

func withOwner(ctx context.Context, o *owner) context.Context {
	return context.WithValue(ctx, ownerKey{}, o)
}

// owner is a go-redis client whose pools dial through the dialer: a
// standalone or failover client, or one node of a cluster. Until its
// client is set, nobody waits and nothing is closed. Its methods take a
// nil owner (a dial of no client).
type owner struct {
	c atomic.Pointer[redis.Client]

	mu       sync.Mutex
	retrying map[*dialing]struct{} // dials that failed and retry, watched
	watching bool                  // watch runs
}

func newOwner(c *redis.Client) *owner {
	o := &owner{}
	o.c.Store(c)
	return o
}

// closed reports whether o's client was closed.
func (o *owner) closed() bool {
	if o == nil {
		return false
	}
	c := o.c.Load()
	return c != nil && askClosed(c)
}

// waited reports whether a command of o's client waits for a connection
// from its pools (the main one and the pipelines' one).
func (o *owner) waited() bool {
	c := o.c.Load()
	if c == nil {
		return false
	}
	s := c.PoolStats()
	n := s.PendingRequests
	if s.PipelineStats != nil {
		n += s.PipelineStats.PendingRequests
	}
	return n > 0
}

// stopReason is why a dial of o that just failed must not retry, or nil.
func (o *owner) stopReason() error {
	if o == nil {
		return errNoOwner
	}
	if !o.waited() {
		return errNotWaited
	}
	if o.closed() {
		return errOwnerClosed
	}
	return nil
}

// watch watches st, which failed and retries, until forget: it is stopped
// when o is closed (in an attempt or between attempts) and when no command
// of o waits any more (between attempts: an attempt under way may still
// make a connection for the pool).
func (o *owner) watch(st *dialing) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.retrying == nil {
		o.retrying = map[*dialing]struct{}{}
	}
	o.retrying[st] = struct{}{}
	if !o.watching {
		o.watching = true
		go o.watchLoop()
	}
}

// forget ends the watch of st.
func (o *owner) forget(st *dialing) {
	if o == nil {
		return
	}
	o.mu.Lock()
	delete(o.retrying, st)
	o.mu.Unlock()
}

// watchLoop checks o's state every watchEvery while some dial of o
// retries; it ends at the first tick with none.
func (o *owner) watchLoop() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var sts []*dialing
	for range t.C {
		o.mu.Lock()
		if len(o.retrying) == 0 {
			o.watching = false
			o.mu.Unlock()
			return
		}
		sts = sts[:0]
		for st := range o.retrying {
			sts = append(sts, st)
		}
		o.mu.Unlock()
		waited, closed := o.waited(), o.closed()
		for _, st := range sts {
			switch {
			case closed:
				st.stop(errOwnerClosed)
			case !waited && !st.inAttempt.Load():
				st.stop(errNotWaited)
			}
		}
	}
}

// notRetried is the error of a dial stopped (why: errNotWaited or
// errNoOwner) before its retry budget ran out: ErrUnavailable with the
// attempts made and the last one's cause. Nobody waits for it but, for a
// Sentinel's dial, go-redis's lookup; go-redis also hands its last dial
// error to the commands that come while it pauses dialing after PoolSize
// failed dials.
func (d *dialer) notRetried(st *dialing, why error) error {
	d.mu.Lock()
	attempts, last := st.attempts, st.last
	d.mu.Unlock()
	detail := "retrying stopped: no command waits for a connection from the client's pools"
	if why == errNoOwner {
		detail = "not retried: a Sentinel's connection, or one made while the client was built"
	}
	e := core.NewError(sslconn.ErrUnavailable, d.cfg.Mode(), st.addr, detail, last)
	e.Attempts, e.Elapsed = max(attempts, 1), time.Since(st.start)
	return e
}
