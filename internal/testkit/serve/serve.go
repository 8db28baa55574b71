// Package serve is the accept loop of the project's in-process fake
// servers: one goroutine per connection, each bounded by a deadline, and a
// Close that ends every connection and waits for its goroutine.
package serve

import (
	"net"
	"sync"
	"time"
)

// sessionLimit bounds each connection: nothing in a fake server may wait
// forever on a client that stops talking.
const sessionLimit = 30 * time.Second

// Loop serves connections on a listener.
type Loop struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Start listens on a free loopback port and runs session for each
// connection, which it closes when session returns.
func Start(session func(net.Conn)) (*Loop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Loop{ln: ln, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept(session)
	return l, nil
}

// Addr is the listener's host:port.
func (l *Loop) Addr() string { return l.ln.Addr().String() }

// Close stops listening, ends every connection and returns once every
// session has.
func (l *Loop) Close() {
	l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *Loop) accept(session func(net.Conn)) {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() {
				l.mu.Lock()
				delete(l.conns, c)
				l.mu.Unlock()
				c.Close()
			}()
			_ = c.SetDeadline(time.Now().Add(sessionLimit))
			session(c)
		}()
	}
}
