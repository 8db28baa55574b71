package core

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestArmDeadPeer: a bound sets the keep-alive probes and TCP_USER_TIMEOUT
// from it; off (0), the socket keeps the dialer's settings.
func TestArmDeadPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sockopts := func(c net.Conn) (idle, interval, count, user int) {
		t.Helper()
		get := func(fd, opt int) int {
			v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, opt)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if err := rawConn(c).Control(func(fd uintptr) {
			idle, interval = get(int(fd), unix.TCP_KEEPIDLE), get(int(fd), unix.TCP_KEEPINTVL)
			count, user = get(int(fd), unix.TCP_KEEPCNT), get(int(fd), unix.TCP_USER_TIMEOUT)
		}); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, tt := range []struct {
		bound                        time.Duration
		idle, interval, count, usrMS int
	}{
		{0, 30, 15, -1, 0}, // the dialer's: net.Dialer's KeepAlive and Go's interval
		{10 * time.Second, 5, 1, 3, 10000},
		{time.Minute, 30, 10, 3, 60000},
		{time.Second, 1, 1, 3, 1000},
	} {
		d := net.Dialer{KeepAlive: 30 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := armDeadPeer(c, tt.bound); err != nil {
			t.Fatal(err)
		}
		idle, interval, count, user := sockopts(c)
		if idle != tt.idle || interval != tt.interval || (tt.count >= 0 && count != tt.count) || user != tt.usrMS {
			t.Errorf("bound %v: idle %d s, interval %d s, %d probes, user timeout %d ms; want %d, %d, %d, %d",
				tt.bound, idle, interval, count, user, tt.idle, tt.interval, tt.count, tt.usrMS)
		}
		c.Close()
	}
}

// TestArmDeadPeerSlowServer: a healthy server that takes twice the bound to
// answer is not cut: its kernel acknowledges the request and the probes.
func TestArmDeadPeerSlowServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 4 s")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b [4]byte
		if _, err := c.Read(b[:]); err == nil {
			time.Sleep(4 * time.Second)
			_, _ = c.Write([]byte("done"))
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := armDeadPeer(c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("slow")); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	if _, err := c.Read(b[:]); err != nil {
		t.Fatalf("a server answering after twice the bound: %v", err)
	}
}
