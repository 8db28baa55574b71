package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// While a server is down, its port refuses connections: the kernel answers
// a SYN with a reset, at no cost to the server. Between two connection
// attempts the retry loop therefore asks cheaply, by connecting and closing
// at once, whether the port accepts again, and makes its next attempt as
// soon as it does, instead of sleeping through the server's return.
//
// One watch per address serves every connection waiting for it: every
// client of the process when they dial through the same dialer (the
// default one, or one WithDialer option given to them all). While its
// checks are refused, a waiting connection makes no attempt of its own (it
// would be refused too), so that the server's host sees one check per
// interval, however many connections wait. When the port accepts again,
// the waiting connections go at most admitMax at a time, so that a fleet
// does not overflow the server's listen queue: a connection dropped there
// waits a whole SYN retransmission (1 s) before it is tried again.
const (
	// pollFirst is the interval between checks for the first pollSteady
	// of an outage: about 20 per second per address.
	pollFirst  = 50 * time.Millisecond
	pollSteady = 2 * time.Second
	// pollMax is the interval once the outage is long: the checks thin
	// out with the down time, to one per second after 40 s.
	pollMax = time.Second
	// admitMax is how many waiting connections may be in progress at
	// once to an address that accepts again: well under the listen
	// queues servers are given (Redis's tcp-backlog is 511, MariaDB's
	// back_log at least 80), and still more than a server's CPU can
	// handshake at a time.
	admitMax = 64
)

// PollInterval is the interval between checks after down of outage, with
// ±20 % jitter so that the clients of a server do not check in step: for
// the retry loop's accept checks, and for adapters that wait for a server
// in other ways (a writable MySQL node after a switchover).
func PollInterval(down time.Duration) time.Duration { return pollInterval(down) }

// pollInterval is PollInterval.
func pollInterval(down time.Duration) time.Duration {
	iv := pollFirst
	if down > pollSteady {
		iv = time.Duration(float64(pollFirst) * float64(down) / float64(pollSteady))
	}
	iv = min(iv, pollMax)
	return iv + time.Duration((rand.Float64()*0.4-0.2)*float64(iv))
}

// acceptWatches are the watches of the clients that dial the same way, by
// network and address.
type acceptWatches struct {
	mu   sync.Mutex
	m    map[[2]string]*acceptWatch
	down map[[2]string]*outage
}

// outage is how long an address has been refusing: since the first
// refusal, unless none was seen for outageGap (it came back meanwhile).
type outage struct{ since, last time.Time }

const outageGap = 5 * time.Second

type acceptWatch struct {
	key     [2]string       // network, address
	up      context.Context // done when the port accepts
	markUp  context.CancelFunc
	stop    chan struct{} // closed when the last waiter leaves
	waiters int
	// refusing: the last check was refused, which stands for the attempt
	// of any connection that dials the way the check does.
	refusing atomic.Bool
	// slots admits the connections let go when the port accepts.
	slots chan struct{}
}

// attemptVia records how a connection attempt made its TCP connection,
// for the retry loop's accept checks: where the watch of its address
// lives, the dial the checks use, and whether a refused check stands for
// the attempt (it dials the same way, to the same network and address: a
// host name is looked up again by each check, as by each attempt, so that
// a name that moves to a new server is followed). An attempt may dial
// more than once, at once (go-mssqldb dials every address of a name in
// parallel): the first dial is kept, and a check stands in for no attempt
// that dialed two ways.
type attemptVia struct {
	mu sync.Mutex
	n  viaNote
}

// viaNote is what an attemptVia holds (scope nil: no dial yet).
type viaNote struct {
	scope         *acceptWatches
	dial          sslconn.DialFunc
	same          bool
	network, addr string
}

type viaKey struct{}

// withVia returns ctx carrying v, which dialFor fills in.
func withVia(ctx context.Context, v *attemptVia) context.Context {
	return context.WithValue(ctx, viaKey{}, v)
}

// noteVia records in ctx's attemptVia, if any, that the attempt dials addr
// on network through dial; configs says dial is the Config's own
// (Config.Dialer).
func (c *Config) noteVia(ctx context.Context, dial sslconn.DialFunc, configs bool, network, addr string) {
	v, _ := ctx.Value(viaKey{}).(*attemptVia)
	if v == nil {
		return
	}
	k, shared := c.knowledgeOf(dial, configs)
	if !shared {
		// The driver's own dialer: the checks go through the Config's,
		// which may not reach the server the same way.
		dial = c.Dialer()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if n := &v.n; n.scope != nil {
		if n.scope != &k.accepts || n.network != network || n.addr != addr {
			n.same = false
		}
		return
	}
	v.n = viaNote{scope: &k.accepts, dial: dial, same: shared, network: network, addr: addr}
}

// snapshot is what v holds now.
func (v *attemptVia) snapshot() viaNote {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

// sleepOrAccept is the retry loop's sleep of delay after err, which the
// attempt to addr described by via ended with. When err is a refused
// connection it ends early, without error, as soon as the address accepts
// again, and then returns once the connection may go (see admitMax), with
// the release to call when its attempt is over. While the checks are
// refused, and they dial as the attempt did, the sleep goes on past delay,
// until the retry budget ends (until).
func (c *Config) sleepOrAccept(ctx context.Context, err error, delay time.Duration, addr string, via *attemptVia, until time.Time) (release func(), _ error) {
	release = func() {}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return release, c.s.Clock.Sleep(ctx, delay)
	}
	v := via.snapshot()
	network, target := op.Addr.Network(), op.Addr.String()
	switch {
	case v.scope == nil:
		v = viaNote{scope: &c.own.accepts, dial: c.Dialer()}
	case v.same && v.addr == addr:
		// The checks dial what the attempt did, by name.
		network, target = v.network, v.addr
	default:
		// The driver dialed an address of its own choosing (go-mssqldb
		// dials the addresses it looked up): the checks follow the
		// refused one, and stand for no attempt.
		v.same = false
	}
	w := v.scope.join(network, target, v.dial)
	defer v.scope.leave(w)
	for {
		sctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(w.up, cancel)
		serr := c.s.Clock.Sleep(sctx, delay)
		stop()
		cancel()
		if serr != nil && ctx.Err() != nil {
			return release, serr
		}
		if w.up.Err() != nil {
			return w.admit(ctx, until.Sub(c.s.Clock.Now()))
		}
		left := until.Sub(c.s.Clock.Now())
		if !v.same || !w.refusing.Load() || left <= 0 {
			return release, nil
		}
		// Still refused: this connection's attempt would be too.
		delay = min(2*pollMax, left)
	}
}

// admit waits, at most for left or until ctx ends, for one of the slots of
// the connections let go when w's port accepted, and returns its release.
// When left runs out first, the connection goes without a slot: the retry
// budget bounds every wait.
func (w *acceptWatch) admit(ctx context.Context, left time.Duration) (release func(), _ error) {
	t := time.NewTimer(max(left, 0))
	defer t.Stop()
	select {
	case w.slots <- struct{}{}:
		return func() { <-w.slots }, nil
	case <-t.C:
		return func() {}, nil
	case <-ctx.Done():
		return func() {}, ctx.Err()
	}
}

// join returns the watch of target, started with dial if there is none,
// counting the caller as its waiter.
func (a *acceptWatches) join(network, target string, dial sslconn.DialFunc) *acceptWatch {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m, a.down = map[[2]string]*acceptWatch{}, map[[2]string]*outage{}
	}
	key := [2]string{network, target}
	now := time.Now()
	o := a.down[key]
	if o == nil || now.Sub(o.last) > outageGap {
		if o == nil {
			a.sweep(now)
		}
		o = &outage{since: now}
		a.down[key] = o
	}
	o.last = now
	w := a.m[key]
	if w == nil {
		w = &acceptWatch{key: key, stop: make(chan struct{}), slots: make(chan struct{}, admitMax)}
		w.up, w.markUp = context.WithCancel(context.Background())
		w.refusing.Store(true) // the joiner's attempt just was
		a.m[key] = w
		go a.watch(network, target, dial, w, o)
	}
	w.waiters++
	return w
}

// sweep forgets the outages no one has waited for since outageGap: the
// addresses given up on, which never accepted again.
func (a *acceptWatches) sweep(now time.Time) {
	for k, o := range a.down {
		if now.Sub(o.last) > outageGap && a.m[k] == nil {
			delete(a.down, k)
		}
	}
}

// leave ends w's checks when no retry waits for it any more (the caller's
// context ended, or the client closed).
func (a *acceptWatches) leave(w *acceptWatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.waiters--
	if w.waiters == 0 {
		if a.m[w.key] == w {
			delete(a.m, w.key)
		}
		close(w.stop)
	}
}

// watch checks target until it accepts a connection or no retry waits for
// it any more.
func (a *acceptWatches) watch(network, target string, dial sslconn.DialFunc, w *acceptWatch, o *outage) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		a.mu.Lock()
		iv := pollInterval(time.Since(o.since))
		a.mu.Unlock()
		t.Reset(iv)
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		o.last = time.Now()
		a.mu.Unlock()
		// The check ends with the watch: nothing outlives the last waiter.
		ctx, cancel := context.WithTimeout(context.Background(), max(iv, 100*time.Millisecond))
		go func() {
			select {
			case <-w.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		conn, err := dial(ctx, network, target)
		// A check cut short may report the refusal of a name's first
		// address while another was still being tried: not a refusal,
		// unless there was only the one address.
		refused := errors.Is(err, syscall.ECONNREFUSED) && (ctx.Err() == nil || isIPPort(target))
		cancel()
		if err == nil {
			conn.Close()
			a.mu.Lock()
			if a.m[w.key] == w {
				delete(a.m, w.key)
			}
			delete(a.down, w.key)
			a.mu.Unlock()
			w.markUp()
			return
		}
		w.refusing.Store(refused)
	}
}

// isIPPort reports whether addr is an IP address and port, which a dial
// tries alone.
func isIPPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = netip.ParseAddr(host)
	return err == nil
}
