package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"
)

// While a server is down, its port refuses connections: the kernel answers
// a SYN with a reset, at no cost to the server. Between two connection
// attempts the retry loop therefore asks cheaply, by connecting and closing
// at once, whether the port accepts again, and makes its next attempt as
// soon as it does, instead of sleeping through the server's return. One
// watch per address and Config serves every connection waiting for it.
const (
	// pollFirst is the interval between checks for the first pollSteady
	// of an outage: about 20 per second per client.
	pollFirst  = 50 * time.Millisecond
	pollSteady = 2 * time.Second
	// pollMax is the interval once the outage is long: the checks thin
	// out with the down time, to one per second after 40 s.
	pollMax = time.Second
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

type acceptWatches struct {
	mu   sync.Mutex
	m    map[string]*acceptWatch
	down map[string]*outage
}

// outage is how long an address has been refusing: since the first
// refusal, unless none was seen for outageGap (it came back meanwhile).
type outage struct{ since, last time.Time }

const outageGap = 5 * time.Second

type acceptWatch struct {
	target  string
	up      context.Context // done when the port accepts
	markUp  context.CancelFunc
	stop    chan struct{} // closed when the last waiter leaves
	waiters int
}

// sleepOrAccept is the retry loop's sleep of delay after err. When err is
// a refused connection it ends early, without error, as soon as the
// address accepts again.
func (c *Config) sleepOrAccept(ctx context.Context, err error, delay time.Duration) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return c.s.Clock.Sleep(ctx, delay)
	}
	network, target := op.Addr.Network(), op.Addr.String()
	w := c.joinWatch(network, target)
	defer c.leaveWatch(w)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(w.up, cancel)
	defer stop()
	if serr := c.s.Clock.Sleep(sctx, delay); serr != nil && ctx.Err() != nil {
		return serr
	}
	return nil
}

func (c *Config) joinWatch(network, target string) *acceptWatch {
	a := &c.accepts
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m, a.down = map[string]*acceptWatch{}, map[string]*outage{}
	}
	now := time.Now()
	o := a.down[target]
	if o == nil || now.Sub(o.last) > outageGap {
		o = &outage{since: now}
		a.down[target] = o
	}
	o.last = now
	w := a.m[target]
	if w == nil {
		w = &acceptWatch{target: target, stop: make(chan struct{})}
		w.up, w.markUp = context.WithCancel(context.Background())
		a.m[target] = w
		go c.watchAccept(network, target, w, o)
	}
	w.waiters++
	return w
}

// leaveWatch ends w's checks when no retry waits for it any more (the
// caller's context ended, or the client closed).
func (c *Config) leaveWatch(w *acceptWatch) {
	a := &c.accepts
	a.mu.Lock()
	defer a.mu.Unlock()
	w.waiters--
	if w.waiters == 0 {
		if a.m[w.target] == w {
			delete(a.m, w.target)
		}
		close(w.stop)
	}
}

// watchAccept checks target until it accepts a connection or no retry
// waits for it any more.
func (c *Config) watchAccept(network, target string, w *acceptWatch, o *outage) {
	a := &c.accepts
	dial := c.Dialer()
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
		cancel()
		if err == nil {
			conn.Close()
			a.mu.Lock()
			if a.m[target] == w {
				delete(a.m, target)
			}
			delete(a.down, target)
			a.mu.Unlock()
			w.markUp()
			return
		}
	}
}
