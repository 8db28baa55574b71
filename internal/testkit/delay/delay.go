// Package delay is a userspace TCP relay that puts a network's distance
// between a client and a server on loopback (these kernels have no netem),
// and counts the round trips the client makes.
//
// Each direction of each connection is a timestamped queue: a chunk read
// at t is written at t + one-way delay (+ jitter), never before the chunk
// read before it, so jitter delays but never reorders. The relay dials the
// target 1.5 RTT after accepting, and holds the client's bytes until then:
// the client's first bytes reach the server, and a greeting the server
// sends first reaches the client, when they would across a real network
// whose TCP handshake costs one RTT (the kernel completes the client's
// handshake on loopback at once).
//
// Round trips are counted as the client sees them: a connection opened
// costs one (the TCP handshake), and so does each wait, the first server
// bytes delivered after the client connected or wrote (and before it
// closed: the answer to a TLS close_notify is no wait). ClientTurns counts
// the other way round (a client write after server bytes, or the first);
// it misses the wait for a greeting and counts a write nobody answers.
package delay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StopTimeout bounds Stop: closing the listeners and every connection ends
// the goroutines at once; this is for a kernel slow to say so.
const StopTimeout = 10 * time.Second

// dialTimeout bounds the relay's dial of the target.
const dialTimeout = 10 * time.Second

// Stats are a relay's counters since it started or since Reset.
type Stats struct {
	Conns       int64 // connections accepted from clients
	Waits       int64 // server bytes delivered after a client write or connect
	ClientTurns int64 // client writes after server bytes (or a connection's first)
	Up, Down    int64 // bytes client→server, server→client
}

// RoundTrips is what the client paid in round trips: one per connection
// (the TCP handshake) and one per wait for the server.
func (s Stats) RoundTrips() int64 { return s.Conns + s.Waits }

// Sub is s minus an earlier snapshot.
func (s Stats) Sub(o Stats) Stats {
	return Stats{s.Conns - o.Conns, s.Waits - o.Waits, s.ClientTurns - o.ClientTurns, s.Up - o.Up, s.Down - o.Down}
}

func (s Stats) String() string {
	return fmt.Sprintf("%d RTT (%d conns, %d waits; %d client turns; %d B up, %d B down)",
		s.RoundTrips(), s.Conns, s.Waits, s.ClientTurns, s.Up, s.Down)
}

// Relay forwards every connection accepted on its port to a target,
// delayed.
type Relay struct {
	target         string
	oneWay, jitter time.Duration
	lns            []net.Listener
	port           int

	conns, waits, turns, up, down atomic.Int64

	mu      sync.Mutex
	perConn []*conn // in the order accepted, since Reset
	open    map[net.Conn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

// Start listens on a free loopback port (127.0.0.1 and, where it can, ::1,
// so that "localhost" reaches it) and forwards to target, each direction
// delayed by oneWay plus a uniform random jitter in [0, jitter).
func Start(target string, oneWay, jitter time.Duration) (*Relay, error) {
	if oneWay < 0 || jitter < 0 {
		return nil, errors.New("delay: negative delay")
	}
	r := &Relay{target: target, oneWay: oneWay, jitter: jitter, open: map[net.Conn]struct{}{}}
	var err error
	for range 20 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln6, err6 := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err6 != nil && !noIPv6() {
			ln.Close() // the port is taken on ::1: another
			err = err6
			continue
		}
		r.lns, r.port = []net.Listener{ln}, port
		if ln6 != nil {
			r.lns = append(r.lns, ln6)
		}
		break
	}
	if r.lns == nil {
		return nil, fmt.Errorf("delay: no port free on 127.0.0.1 and ::1: %w", err)
	}
	for _, ln := range r.lns {
		r.wg.Add(1)
		go r.accept(ln)
	}
	return r, nil
}

// noIPv6 reports whether this host has no ::1 to listen on.
func noIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return true
	}
	ln.Close()
	return false
}

// Addr is "127.0.0.1:port".
func (r *Relay) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Port is the relay's port, on 127.0.0.1 and ::1.
func (r *Relay) Port() int { return r.port }

// Stats returns the counters.
func (r *Relay) Stats() Stats {
	return Stats{r.conns.Load(), r.waits.Load(), r.turns.Load(), r.up.Load(), r.down.Load()}
}

// Reset sets the counters to zero.
func (r *Relay) Reset() {
	r.mu.Lock()
	r.perConn = nil
	r.mu.Unlock()
	r.conns.Store(0)
	r.waits.Store(0)
	r.turns.Store(0)
	r.up.Store(0)
	r.down.Store(0)
}

// PerConn returns each connection's counters, in the order accepted
// (since Reset): where a client's round trips went.
func (r *Relay) PerConn() []Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Stats, len(r.perConn))
	for i, c := range r.perConn {
		c.mu.Lock()
		out[i] = c.stats
		c.mu.Unlock()
	}
	return out
}

// Stop closes the listeners and every connection and waits, at most
// StopTimeout, for the relay's goroutines to end.
func (r *Relay) Stop() error {
	r.mu.Lock()
	r.stopped = true
	for _, ln := range r.lns {
		ln.Close()
	}
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(StopTimeout):
		return errors.New("delay: relay goroutines still running after Stop")
	}
}

// track registers c for Stop; false if the relay has stopped.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		c.Close()
		return false
	}
	r.open[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.open, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) accept(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !r.track(c) {
			return
		}
		r.conns.Add(1)
		r.wg.Add(1)
		go r.serve(c)
	}
}

// chunk is bytes read at one time, due for writing at due.
type chunk struct {
	b   []byte
	due time.Time
}

// queue is one direction's timestamped queue.
type queue struct {
	mu   sync.Mutex
	cond *sync.Cond
	q    []chunk
	last time.Time // the last chunk's due time: the next is never earlier
	eof  bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(b []byte, due time.Time) {
	q.mu.Lock()
	if due.Before(q.last) {
		due = q.last
	}
	q.last = due
	q.q = append(q.q, chunk{b, due})
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *queue) close() {
	q.mu.Lock()
	q.eof = true
	q.mu.Unlock()
	q.cond.Signal()
}

// pop returns the next chunk, or false at the end of the stream.
func (q *queue) pop() (chunk, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.q) == 0 && !q.eof {
		q.cond.Wait()
	}
	if len(q.q) == 0 {
		return chunk{}, false
	}
	c := q.q[0]
	q.q = q.q[1:]
	return c, true
}

// conn is the round-trip state of one client connection.
type conn struct {
	mu    sync.Mutex
	stats Stats // this connection's share (Conns 1)
	// wrote: the client has connected or written since the server's
	// last bytes reached it (the next delivery is a wait).
	wrote bool
	// heard: server bytes reached the client since its last write (or
	// it has not written yet: the next write is a client turn).
	heard bool
	// closed: the client has closed (or half-closed) its side: what the
	// server sends now (an answer to a TLS close_notify) nobody waits for.
	closed bool
}

func (r *Relay) delayFor() time.Duration {
	d := r.oneWay
	if r.jitter > 0 {
		d += rand.N(r.jitter)
	}
	return d
}

func (r *Relay) serve(client net.Conn) {
	defer r.wg.Done()
	defer r.untrack(client)
	st := &conn{wrote: true, heard: true, stats: Stats{Conns: 1}}
	r.mu.Lock()
	r.perConn = append(r.perConn, st)
	r.mu.Unlock()
	accepted := time.Now()
	up, down := newQueue(), newQueue()

	// Client → queue: stamped as read, counted as a client write.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer up.close()
		for {
			b := make([]byte, 32<<10)
			n, err := client.Read(b)
			if n > 0 {
				st.mu.Lock()
				if st.heard {
					r.turns.Add(1)
					st.stats.ClientTurns++
					st.heard = false
				}
				st.wrote = true
				st.stats.Up += int64(n)
				st.mu.Unlock()
				r.up.Add(int64(n))
				up.push(b[:n], time.Now().Add(r.delayFor()))
			}
			if err != nil {
				st.mu.Lock()
				st.closed = true
				st.mu.Unlock()
				return
			}
		}
	}()

	// 1.5 RTT after the accept: the server sees the connection when it
	// would have across the network.
	sleepUntil(accepted.Add(3 * r.oneWay))
	server, err := net.DialTimeout("tcp", r.target, dialTimeout)
	if err != nil || !r.track(server) {
		// Refused or stopped: the client learns it one way later.
		time.Sleep(r.oneWay)
		client.Close()
		for _, ok := up.pop(); ok; _, ok = up.pop() {
		}
		return
	}
	defer r.untrack(server)

	// Server → queue.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer down.close()
		for {
			b := make([]byte, 32<<10)
			n, err := server.Read(b)
			if n > 0 {
				down.push(b[:n], time.Now().Add(r.delayFor()))
			}
			if err != nil {
				return
			}
		}
	}()

	// Queue → client: counted as delivered.
	delivered := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(delivered)
		for {
			c, ok := down.pop()
			if !ok {
				closeWrite(client)
				return
			}
			sleepUntil(c.due)
			st.mu.Lock()
			if st.wrote && !st.closed {
				r.waits.Add(1)
				st.stats.Waits++
				st.wrote = false
			}
			st.heard = true
			st.stats.Down += int64(len(c.b))
			st.mu.Unlock()
			r.down.Add(int64(len(c.b)))
			if _, err := client.Write(c.b); err != nil {
				client.Close()
				server.Close()
				for _, ok := down.pop(); ok; _, ok = down.pop() {
				}
				return
			}
		}
	}()

	// Queue → server.
	for {
		c, ok := up.pop()
		if !ok {
			closeWrite(server)
			break
		}
		sleepUntil(c.due)
		if _, err := server.Write(c.b); err != nil {
			client.Close()
			server.Close()
			for _, ok := up.pop(); ok; _, ok = up.pop() {
			}
			break
		}
	}
	// The other direction ends when the server closes (or Stop): then
	// the deferred closes.
	<-delivered
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	c.Close()
}
