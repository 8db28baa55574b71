package core

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// endpoint serves, on one loopback port, plaintext like Redis (PING
// answered, a ClientHello met with silence), TLS, or both, switchable.
type endpoint struct {
	l     net.Listener
	conf  *tls.Config
	serve atomic.Int32 // servePlain, serveTLS, serveBoth or serveAlert
	hello atomic.Int32 // ClientHellos received
	// pongAfter delays every plaintext answer, helloAfter every answer to
	// a ClientHello (time.Durations): a loaded machine, deterministically.
	pongAfter, helloAfter atomic.Int64
}

const (
	servePlain = iota
	serveTLS
	serveBoth
	// serveAlert answers PING at once, and a ClientHello with a TLS
	// protocol_version alert: a server that speaks TLS, not the versions
	// offered, on a port that also answers plaintext.
	serveAlert
	// serveTLS10 is serveBoth whose TLS is 1.0 only (crypto/tls's server
	// answers Go's ClientHello with its protocol_version alert).
	serveTLS10
)

// versionAlert is a fatal protocol_version alert record (RFC 8446 6.2).
var versionAlert = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 70}

func startEndpoint(t *testing.T, serve int) *endpoint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); ForgetPreferred(l.Addr().String()) })
	leaf := makeCert(t, "localhost", []string{"localhost"}, false, time.Now().Add(time.Hour), nil)
	e := &endpoint{l: l, conf: &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert()}}}
	e.serve.Store(int32(serve))
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go e.handle(c)
		}
	}()
	return e
}

func (e *endpoint) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	first, err := r.Peek(1)
	if err != nil {
		return
	}
	serve := e.serve.Load()
	if first[0] == 0x16 {
		e.hello.Add(1)
		if serve != servePlain {
			time.Sleep(time.Duration(e.helloAfter.Load()))
		}
		if serve == serveAlert {
			// Read the whole ClientHello record first: a socket closed
			// with unread data sends a reset, which can destroy the alert.
			var h [5]byte
			if _, err := io.ReadFull(r, h[:]); err == nil {
				if _, err := io.CopyN(io.Discard, r, int64(h[3])<<8|int64(h[4])); err == nil {
					_, _ = c.Write(versionAlert)
				}
			}
			return
		}
		if serve == servePlain {
			_, _ = io.Copy(io.Discard, r) // Redis waits for a newline that never comes
			return
		}
		conf := e.conf
		if serve == serveTLS10 {
			conf = conf.Clone()
			conf.MinVersion, conf.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		}
		tc := tls.Server(&peeked{c, r}, conf)
		if tc.Handshake() != nil {
			return
		}
		r, c = bufio.NewReader(tc), tc
	} else if serve == serveTLS {
		return // a TLS port drops what is not a handshake
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "PING") {
			time.Sleep(time.Duration(e.pongAfter.Load()))
			_, _ = io.WriteString(c, "+PONG\r\n")
		}
		if strings.HasPrefix(line, "PINGBYE") {
			return // answered, then closed: a restart
		}
	}
}

type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// testPing is a plaintext probe (Spec.Probe) for endpoint.
func testPing(_ context.Context, conn net.Conn) error {
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line[0] != '+' && line[0] != '-' {
		return errors.New("not a reply")
	}
	return nil
}

func preferredConfig(t *testing.T, probe func(context.Context, net.Conn) error) *Config {
	t.Helper()
	c, err := Resolve(Spec{Probe: probe}, sslconn.WithMode(sslconn.Preferred))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// encrypted dials addr once and reports whether the connection is TLS,
// after checking it works.
func encrypted(t *testing.T, c *Config, addr string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := testPing(ctx, conn); err != nil {
		t.Fatalf("PING: %v", err)
	}
	return conn.(*Conn).Status().Encrypted
}

func TestPreferredPlaintext(t *testing.T) {
	e := startEndpoint(t, servePlain)
	c := preferredConfig(t, testPing)
	start := time.Now()
	if encrypted(t, c, e.l.Addr().String()) {
		t.Fatal("encrypted on a plaintext port")
	}
	// Without the probe this waits for firstByteTimeout.
	if took := time.Since(start); took >= firstByteTimeout {
		t.Fatalf("the plaintext port was recognised after %v, by the first-byte wait", took)
	}
	// Known now: later connections send no ClientHello, nor do those of a
	// new client of the process, whatever its TLS settings. Only the
	// background TLS check, at once after a first connection, sends one.
	for deadline := time.Now().Add(2 * time.Second); e.hello.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	hellos := e.hello.Load()
	other, err := Resolve(Spec{Probe: testPing}, sslconn.WithMode(sslconn.Preferred), sslconn.WithTLSVersions(tls.VersionTLS13, tls.VersionTLS13))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Config{c, c, preferredConfig(t, testPing), other} {
		if encrypted(t, c, e.l.Addr().String()) {
			t.Fatal("encrypted on a plaintext port")
		}
	}
	if n := e.hello.Load() - hellos; n != 0 {
		t.Fatalf("%d ClientHellos to an address known to serve plaintext", n)
	}
	// A client with a dialer of its own, which may reach another server
	// behind the address, finds out for itself.
	own, err := Resolve(Spec{Probe: testPing}, sslconn.WithMode(sslconn.Preferred), sslconn.WithDialer(new(net.Dialer).DialContext))
	if err != nil {
		t.Fatal(err)
	}
	if encrypted(t, own, e.l.Addr().String()) {
		t.Fatal("encrypted on a plaintext port")
	}
	if e.hello.Load() == hellos {
		t.Fatal("a client with its own dialer sent no ClientHello: it used the process's knowledge")
	}
}

// TestPreferredTLS: a port that serves TLS, alone or with plaintext, gets
// TLS, every time, also when its TLS answer comes long after its plaintext
// one (a loaded machine). Each round is a first connection, with nothing
// known of the address.
func TestPreferredTLS(t *testing.T) {
	for _, serve := range []int{serveTLS, serveBoth} {
		t.Run([]string{"tls-only", "both"}[serve-1], func(t *testing.T) {
			e := startEndpoint(t, serve)
			addr := e.l.Addr().String()
			for i, late := range []time.Duration{0, 0, 5 * time.Millisecond, 30 * time.Millisecond} {
				e.helloAfter.Store(int64(late))
				ForgetPreferred(addr)
				if !encrypted(t, preferredConfig(t, testPing), addr) {
					t.Fatalf("round %d: plaintext on a port that serves TLS (its answers %v late)", i+1, late)
				}
			}
			c := preferredConfig(t, testPing)
			for range 5 {
				if !encrypted(t, c, addr) {
					t.Fatal("plaintext on a port that serves TLS")
				}
			}
		})
	}
}

// TestPreferredStrict: PREFERRED takes plaintext only from a port that does
// not speak TLS, whatever the load. Each round is a new client's first
// connection, with nothing known of the address. A port that serves TLS,
// and answers plaintext too but later (by 100 ms), is TLS every time. A
// port that answers plaintext at once and a ClientHello with a
// protocol_version alert (a raw alert, or crypto/tls limited to TLS 1.0)
// speaks TLS: every connection fails with ErrTLSVersion, none is
// plaintext, also when the alert comes 20-50 ms after the plaintext answer
// (a loaded machine, made deterministic by the endpoint's delay).
func TestPreferredStrict(t *testing.T) {
	const rounds = 20
	t.Run("plaintext answered late", func(t *testing.T) {
		e := startEndpoint(t, serveBoth)
		e.pongAfter.Store(int64(100 * time.Millisecond))
		for i := range rounds / 4 {
			ForgetPreferred(e.l.Addr().String())
			if !encrypted(t, preferredConfig(t, testPing), e.l.Addr().String()) {
				t.Fatalf("round %d: plaintext on a port that serves TLS and answers plaintext 100 ms later", i+1)
			}
		}
	})
	own := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, addr)
		return struct{ net.Conn }{c}, err // no CloseWrite
	}
	for _, tt := range []struct {
		name  string
		serve int
		opts  []sslconn.Option
	}{
		{"alert", serveAlert, nil},
		{"TLS 1.0 only", serveTLS10, nil},
		{"TLS 1.0 only, a dialer without half-close", serveTLS10, []sslconn.Option{sslconn.WithDialer(own)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startEndpoint(t, tt.serve)
			addr := e.l.Addr().String()
			n := rounds
			if tt.opts != nil {
				n = 4
			}
			for i := range n {
				late := []time.Duration{0, 20 * time.Millisecond, 35 * time.Millisecond, 50 * time.Millisecond}[i%4]
				e.helloAfter.Store(int64(late))
				ForgetPreferred(addr)
				c, err := Resolve(Spec{Probe: testPing}, append([]sslconn.Option{sslconn.WithMode(sslconn.Preferred)}, tt.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				conn, err := c.DialMode(ctx, sslconn.Preferred, "tcp", addr, nil)
				cancel()
				if err == nil {
					conn.Close()
					t.Fatalf("round %d: connected (encrypted: %t) to a port that answered the ClientHello with an alert %v late",
						i+1, conn.(*Conn).Status().Encrypted, late)
				}
				if !errors.Is(err, sslconn.ErrTLSVersion) {
					t.Fatalf("round %d (alert %v late): %v, want ErrTLSVersion", i+1, late, err)
				}
			}
		})
	}
}

// TestPreferredLearnsTLS: an address known to serve plaintext is
// encrypted soon after it starts serving TLS, whether the change comes
// with a restart (plaintext connections dropped) or behind a proxy that
// accepts both (found by the background check).
func TestPreferredLearnsTLS(t *testing.T) {
	defer func(d time.Duration) { recheckEvery = d }(recheckEvery)
	recheckEvery = 100 * time.Millisecond
	for _, serve := range []int{serveTLS, serveBoth} {
		t.Run([]string{"tls-only", "both"}[serve-1], func(t *testing.T) {
			e := startEndpoint(t, servePlain)
			c := preferredConfig(t, testPing)
			addr := e.l.Addr().String()
			if encrypted(t, c, addr) {
				t.Fatal("encrypted on a plaintext port")
			}
			e.serve.Store(int32(serve))
			deadline := time.Now().Add(10 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				conn, err := c.Dial(ctx, "tcp", addr, nil)
				if err == nil {
					err = testPing(ctx, conn)
					if err == nil && conn.(*Conn).Status().Encrypted {
						conn.Close()
						cancel()
						return
					}
					conn.Close()
				}
				cancel()
				// A plaintext connection a TLS port drops says so: not sent.
				if err != nil && !errors.Is(err, sslconn.ErrNotSent) {
					t.Fatalf("%v", err)
				}
				if time.Now().After(deadline) {
					t.Fatal("still plaintext 10 s after the port started serving TLS")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestPreferredNoDowngrade: a handshake that starts and fails is an error
// under PREFERRED even though the port would also answer plaintext.
func TestPreferredNoDowngrade(t *testing.T) {
	e := startEndpoint(t, serveBoth)
	e.conf.MinVersion = tls.VersionTLS13
	c, err := Resolve(Spec{Probe: testPing}, sslconn.WithMode(sslconn.Preferred), sslconn.WithTLSVersions(tls.VersionTLS12, tls.VersionTLS12))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.DialMode(ctx, sslconn.Preferred, "tcp", e.l.Addr().String(), nil)
	if err == nil {
		conn.Close()
		t.Fatalf("connected (encrypted: %v) after a failed handshake", conn.(*Conn).Status().Encrypted)
	}
	if !errors.Is(err, sslconn.ErrTLSVersion) {
		t.Fatalf("got %v, want ErrTLSVersion", err)
	}
}

// TestPreferredPeerCheck: a PREFERRED connection, TLS or plaintext, tells
// a write into a connection the server has closed (a restart) from one
// that may have run: the peer check sees the TCP socket under TLS.
func TestPreferredPeerCheck(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the closed-peer check reads Linux's TCP state")
	}
	for _, serve := range []int{servePlain, serveTLS} {
		t.Run([]string{"plaintext", "tls"}[serve], func(t *testing.T) {
			e := startEndpoint(t, serve)
			c := preferredConfig(t, testPing)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := c.Dial(ctx, "tcp", e.l.Addr().String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "PINGBYE\r\n"); err != nil {
				t.Fatal(err)
			}
			if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(conn, "PING\r\n"); !errors.Is(err, sslconn.ErrNotSent) {
				t.Fatalf("write after the server closed: %v, want ErrNotSent", err)
			}
		})
	}
}
