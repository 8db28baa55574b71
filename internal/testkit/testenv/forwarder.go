package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ForwarderStopTimeout bounds Forwarder.Close: closing the listener and
// every connection ends the copying goroutines at once; this is for a
// kernel that is slow to say so.
const ForwarderStopTimeout = 10 * time.Second

// Forwarder is a TCP endpoint on loopback that forwards each connection to
// the current target: a cloud's virtual IP in front of a primary and a
// replica. Move points it at another node, keeping or cutting the
// connections already made.
type Forwarder struct {
	Port int

	lns    []net.Listener // 127.0.0.1 and, if it can, ::1 ("localhost")
	mu     sync.Mutex
	target string
	conns  map[*fwdConn]struct{}
	closed bool
	cuts   int // Moves that cut, so a connection dialed before one is cut too
	log    []Cut
	wg     sync.WaitGroup
}

// Cut is what one Move did, as the forwarder saw it: tests excuse an
// operation's failure only if it was in flight on a connection the cut
// closed, and time recovery from the moment the endpoint reached the new
// node.
type Cut struct {
	// Moved is when new connections started going to the new target
	// (taken under the lock that dialing reads the target under).
	Moved time.Time
	// Begin and End enclose the closing of the connections: Begin is
	// taken before the first is closed, End after the last. With no
	// connection closed (a Move without cut, or none open) both are Moved.
	Begin, End time.Time
	// Closed is how many forwarded connections the cut closed; Addrs are
	// their client-side addresses (the client's local address).
	Closed int
	Addrs  []string
}

// Spans reports whether an operation that ran from start to end overlaps
// the closing of the cut's connections.
func (c Cut) Spans(start, end time.Time) bool {
	return c.Closed > 0 && !start.After(c.End) && !end.Before(c.Begin)
}

type fwdConn struct{ client, server net.Conn }

func (c *fwdConn) close() { c.client.Close(); c.server.Close() }

// StartForwarder listens on a free loopback port and forwards to target
// ("host:port").
func StartForwarder(target string) (*Forwarder, error) {
	var (
		ln   net.Listener
		err  error
		port int
	)
	for range 3 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", Addr(port)); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("testenv: forwarder: %w", err)
	}
	f := &Forwarder{Port: port, lns: []net.Listener{ln}, target: target, conns: map[*fwdConn]struct{}{}}
	if ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil {
		f.lns = append(f.lns, ln6)
	}
	for _, ln := range f.lns {
		f.wg.Add(1)
		go f.accept(ln)
	}
	return f, nil
}

// Addr is the endpoint's address, "127.0.0.1:port".
func (f *Forwarder) Addr() string { return Addr(f.Port) }

// Target is the address connections are forwarded to.
func (f *Forwarder) Target() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target
}

// Move forwards new connections to target; with cut, the connections made
// before are closed (both sides), as a failover's endpoint change does;
// without, they stay with the old node. It returns what it did, which
// Cuts also lists.
func (f *Forwarder) Move(target string, cut bool) Cut {
	f.mu.Lock()
	f.target = target
	rec := Cut{Moved: time.Now()}
	var old []*fwdConn
	if cut {
		f.cuts++
		for c := range f.conns {
			old = append(old, c)
		}
	}
	f.mu.Unlock()
	rec.Begin, rec.End = rec.Moved, rec.Moved
	if len(old) > 0 {
		rec.Begin = time.Now()
		for _, c := range old {
			rec.Addrs = append(rec.Addrs, c.client.RemoteAddr().String())
			c.close()
		}
		rec.End = time.Now()
		rec.Closed = len(old)
	}
	f.mu.Lock()
	f.log = append(f.log, rec)
	f.mu.Unlock()
	return rec
}

// Cut closes every connection made so far, keeping the target.
func (f *Forwarder) Cut() Cut { return f.Move(f.Target(), true) }

// Cuts lists every Move so far, in order.
func (f *Forwarder) Cuts() []Cut {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Cut(nil), f.log...)
}

// Conns is the number of open forwarded connections.
func (f *Forwarder) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

func (f *Forwarder) accept(ln net.Listener) {
	defer f.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.forward(client)
	}
}

func (f *Forwarder) forward(client net.Conn) {
	defer f.wg.Done()
	f.mu.Lock()
	target, cuts := f.target, f.cuts
	f.mu.Unlock()
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		client.Close() // the node is down: as a refused connection
		return
	}
	c := &fwdConn{client, server}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		c.close()
		return
	}
	if f.cuts != cuts {
		// Accepted before a cut and dialed after it: the cut closes it
		// too, and its record says so.
		c.close()
		if n := len(f.log); n > 0 {
			rec := &f.log[n-1]
			if rec.Closed == 0 {
				rec.Begin = time.Now()
			}
			rec.Closed++
			rec.Addrs = append(rec.Addrs, client.RemoteAddr().String())
			rec.End = time.Now()
		}
		f.mu.Unlock()
		return
	}
	f.conns[c] = struct{}{}
	f.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(to, from net.Conn) {
		_, _ = io.Copy(to, from)
		c.close() // either side ending ends both
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// Close stops listening and closes every connection; it waits at most
// ForwarderStopTimeout for the copying to end.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	list := make([]*fwdConn, 0, len(f.conns))
	for c := range f.conns {
		list = append(list, c)
	}
	f.mu.Unlock()
	var err error
	for _, ln := range f.lns {
		err = errors.Join(err, ln.Close())
	}
	for _, c := range list {
		c.close()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-time.After(ForwarderStopTimeout):
		return errors.Join(err, fmt.Errorf("testenv: forwarder on port %d: connections still copying %v after Close", f.Port, ForwarderStopTimeout))
	}
}

// AcceptProbe stamps the moment a port starts accepting connections again:
// it connects to addr in a tight loop (a refused connect on loopback costs
// tens of microseconds; 200 µs apart) until one is accepted, closes it, and
// records the time. Benchmarks time recovery from that stamp, not from a
// readiness check that polls every 50 ms or logs in first.
type AcceptProbe struct {
	done chan struct{}
	stop chan struct{}
	at   time.Time
	err  error
}

// ProbeAccept starts an AcceptProbe on addr ("host:port"), which should be
// refusing now (the server stopped).
func ProbeAccept(addr string) *AcceptProbe {
	p := &AcceptProbe{done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(p.done)
		d := net.Dialer{Timeout: time.Second}
		for {
			c, err := d.Dial("tcp", addr)
			if err == nil {
				p.at = time.Now()
				c.Close()
				return
			}
			select {
			case <-p.stop:
				p.err = fmt.Errorf("testenv: %s did not accept before the probe was stopped: %w", addr, err)
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	return p
}

// Wait returns when the port accepted, at most limit from now; after that
// it stops the probe and returns an error.
func (p *AcceptProbe) Wait(limit time.Duration) (time.Time, error) {
	select {
	case <-p.done:
	case <-time.After(limit):
		close(p.stop)
		<-p.done
	}
	return p.at, p.err
}
