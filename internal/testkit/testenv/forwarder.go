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
	wg     sync.WaitGroup
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
// without, they stay with the old node.
func (f *Forwarder) Move(target string, cut bool) {
	f.mu.Lock()
	f.target = target
	var old []*fwdConn
	if cut {
		f.cuts++
		for c := range f.conns {
			old = append(old, c)
		}
	}
	f.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// Cut closes every connection made so far, keeping the target.
func (f *Forwarder) Cut() { f.Move(f.Target(), true) }

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
	if f.closed || f.cuts != cuts {
		f.mu.Unlock()
		c.close()
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
