//go:build linux

package core

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestWatchOnClose: onClose fires when the server closes the connection,
// once, not when it sends data, and not after stop; with nothing left to
// watch, the epoll instance is closed.
func TestWatchOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() (client, server net.Conn, fired chan struct{}, stop func()) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fired = make(chan struct{}, 2)
		w := newWatch(c)
		if !w.onClose(func() { fired <- struct{}{} }) {
			t.Fatal("a TCP connection cannot be watched")
		}
		return c, <-accepted, fired, w.stop
	}
	quiet := func(fired chan struct{}, what string) {
		select {
		case <-fired:
			t.Errorf("fired on %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	c1, s1, fired1, stop1 := dial()
	c2, s2, fired2, stop2 := dial()
	if _, err := s1.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	quiet(fired1, "data")
	s1.Close()
	select {
	case <-fired1:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's close was not seen")
	}
	quiet(fired1, "a close already reported")

	stop2()
	s2.Close()
	quiet(fired2, "a stopped watch")
	stop1()
	c1.Close()
	c2.Close()

	// (Connections another test left open would still be watched.)
	closes.mu.Lock()
	defer closes.mu.Unlock()
	if closes.ep != nil && len(closes.regs) == 0 {
		t.Error("the epoll instance is open with nothing to watch")
	}
}

// TestConnWatch: a connection from Dial hears, over TLS, that its server
// closed it (Conn.OnClose watches the socket under TLS), and Close ends its
// watch.
func TestConnWatch(t *testing.T) {
	e := startEndpoint(t, serveTLS)
	c := preferredConfig(t, testPing)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", e.l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{}, 1)
	if !conn.(*Conn).OnClose(func() { fired <- struct{}{} }) {
		t.Fatal("a connection from Dial cannot be watched")
	}
	if _, err := io.WriteString(conn, "PINGBYE\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's close was not seen")
	}
	conn.Close()
	closes.mu.Lock()
	defer closes.mu.Unlock()
	if len(closes.regs) != 0 {
		t.Errorf("%d watches left after Close", len(closes.regs))
	}
}
