package core

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

func TestHostName(t *testing.T) {
	for addr, want := range map[string]string{
		"db.example.com:3306": "db.example.com",
		"localhost:1":         "localhost",
		"127.0.0.1:1":         "",
		"[::1]:1":             "",
		"[fe80::1%eth0]:1":    "",
		"no-port":             "",
	} {
		t.Run(addr, func(t *testing.T) {
			if got := hostName(addr); got != want {
				t.Errorf("hostName(%q) = %q, want %q", addr, got, want)
			}
		})
	}
}

// TestMovedName: a kept connection dialed through a name is retired once a
// lookup of the name no longer gives its address, and only then; between
// operations only.
func TestMovedName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { b := make([]byte, 1); c.Read(b); c.Write(b); c.Read(b); c.Close() }()
		}
	}()
	answer := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	var lookupErr error
	setLookup := func(f func(context.Context, string, string) ([]netip.Addr, error)) {
		names.mu.Lock()
		lookupIP = f
		names.mu.Unlock()
	}
	saved := lookupIP
	setLookup(func(context.Context, string, string) ([]netip.Addr, error) { return answer, lookupErr })
	defer setLookup(saved)

	c, err := newConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	name := "moved.sslconn.test"
	// The core's dialer, to the name (here through the IP: the test has no
	// resolver of its own).
	raw, err := namedDial(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
	})(context.Background(), "tcp", net.JoinHostPort(name, port))
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Watched(raw)
	defer conn.Close()
	w := conn.(*watchedSocket).w
	if w.name != name {
		t.Fatalf("the connection follows %q, want %q", w.name, name)
	}
	rc, err := conn.(*watchedSocket).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	check := func() error { return rc.Read(func(uintptr) bool { return true }) }

	names.check(name)
	if w.retired.Load() || check() != nil {
		t.Fatal("retired while the name still resolves to its address")
	}
	lookupErr, answer = errors.New("no answer"), nil
	names.check(name)
	if w.retired.Load() {
		t.Fatal("a failed lookup retired the connection")
	}
	lookupErr, answer = nil, []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	// In the middle of an operation: the request went out, no answer yet.
	if _, err := conn.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	names.check(name)
	if !w.retired.Load() {
		t.Fatal("not retired once the name moved")
	}
	if w.retiring() {
		t.Error("a connection with a request unanswered is retiring")
	}
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if !w.retiring() {
		t.Error("an answered connection to a moved name is not retiring")
	}
	if err := check(); err == nil {
		t.Error("the driver's liveness check passes a retired connection")
	}
	names.mu.Lock()
	n := len(names.byName[name])
	names.mu.Unlock()
	if n != 0 {
		t.Errorf("the retired connection is still followed")
	}

	// Closing a followed connection ends its following.
	other, err := namedDial(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
	})(context.Background(), "tcp", net.JoinHostPort(name, port))
	if err != nil {
		t.Fatal(err)
	}
	oc := c.Watched(other)
	names.mu.Lock()
	n = len(names.byName[name])
	names.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections followed, want 1", n)
	}
	oc.Close()
	names.mu.Lock()
	n = len(names.byName[name])
	names.mu.Unlock()
	if n != 0 {
		t.Errorf("a closed connection is still followed")
	}
	names.mu.Lock()
	running := names.stop != nil
	names.mu.Unlock()
	if running {
		t.Errorf("the lookups go on with nothing to follow")
	}

	// A Conn from Dial refuses the next request unsent.
	d := &Conn{Conn: raw, raw: raw, watch: w, cfg: c, mode: sslconn.Disabled}
	d.read.Store(true)
	if _, err := d.Write([]byte{'y'}); !errors.Is(err, sslconn.ErrNotSent) {
		t.Errorf("a request on a retired connection: %v, want ErrNotSent", err)
	}
}

// namedDial is dial noting, as the core's own dialer (netDialer) does, the host name each
// connection was dialed through, for Config.watch to follow.
func namedDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err == nil {
			noteName(raw, addr)
		}
		return raw, err
	}
}
