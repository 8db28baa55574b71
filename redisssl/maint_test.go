package redisssl

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// fakeRedis is a TLS server that speaks just enough RESP3 for go-redis's
// connection set-up, answers WHO with its name, and answers MOVE with a
// MOVING maintenance notification naming moveTo, as Redis Enterprise does
// before it moves an endpoint.
type fakeRedis struct {
	name   string
	moveTo string
	ln     net.Listener
	mu     sync.Mutex
	types  []string // the endpoint types clients asked for
	wg     sync.WaitGroup
}

func startFakeRedis(t *testing.T, certs *testenv.Certs, name string) *fakeRedis {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.SAN.Cert, certs.SAN.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{name: name, ln: ln}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

// endpoint is the address to reach f at, by a name its certificate holds.
func (f *fakeRedis) endpoint() string {
	return "localhost:" + strconv.Itoa(f.ln.Addr().(*net.TCPAddr).Port)
}

func (f *fakeRedis) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.types...)
}

func (f *fakeRedis) serve() {
	defer f.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			f.handle(c)
		}()
	}
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

func (f *fakeRedis) handle(c net.Conn) {
	rd := bufio.NewReader(c)
	for {
		args, err := readCommand(rd)
		if err != nil {
			return
		}
		var reply string
		switch strings.ToUpper(args[0]) {
		case "HELLO":
			reply = "%7\r\n" + bulk("server") + bulk("redis") + bulk("version") + bulk("7.4.0") + bulk("proto") + ":3\r\n" +
				bulk("id") + ":1\r\n" + bulk("mode") + bulk("standalone") + bulk("role") + bulk("master") + bulk("modules") + "*0\r\n"
		case "CLIENT":
			if len(args) >= 5 && strings.EqualFold(args[1], "MAINT_NOTIFICATIONS") {
				f.mu.Lock()
				f.types = append(f.types, args[4])
				f.mu.Unlock()
			}
			reply = "+OK\r\n"
		case "PING":
			reply = "+PONG\r\n"
		case "ECHO":
			reply = bulk(args[1])
		case "WHO":
			reply = bulk(f.name)
		case "MOVE":
			// MOVING seq time-in-seconds endpoint, then the reply.
			reply = ">4\r\n" + bulk("MOVING") + ":1\r\n:15\r\n" + bulk(f.moveTo) + "+OK\r\n"
		default:
			reply = "-ERR unknown command '" + args[0] + "'\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array: %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil {
			return nil, fmt.Errorf("bad bulk: %q", line)
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:l])
	}
	return args, nil
}

// TestMaintNotificationsMoving: maintenance notifications work through the
// package's dialer. The client asks for endpoints by name (what go-redis
// asks for under TLS), and when the server announces a move (MOVING), go-redis
// hands the connection off to the new endpoint through the options'
// Dialer, with TLS on top, verified against the new endpoint's name.
func TestMaintNotificationsMoving(t *testing.T) {
	certs := testenv.GetCerts(t)
	a, b := startFakeRedis(t, certs, "A"), startFakeRedis(t, certs, "B")
	a.moveTo = b.endpoint()
	var user countingDialer
	c, err := NewClientFromOptions(&redis.Options{
		Addr: a.endpoint(), Dialer: user.dial, Protocol: 3, PoolSize: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeEnabled},
	}, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	who := func() string {
		t.Helper()
		s, err := c.Do(ctx, "WHO").Text()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := who(); got != "A" {
		t.Fatalf("served by %s, want A", got)
	}
	if got := a.asked(); len(got) == 0 || got[0] != maintnotifications.EndpointTypeInternalFQDN.String() {
		t.Fatalf("endpoint types asked for: %v, want %s (TLS)", got, maintnotifications.EndpointTypeInternalFQDN)
	}
	if err := c.Do(ctx, "MOVE").Err(); err != nil {
		t.Fatal(err)
	}
	for who() != "B" {
		if ctx.Err() != nil {
			t.Fatal("the connection was never handed off to the new endpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	user.mu.Lock()
	viaUser := user.addrs[b.endpoint()]
	user.mu.Unlock()
	if viaUser == 0 {
		t.Fatalf("the handoff did not dial through the options' Dialer: %v", user.addrs)
	}
	st, err := Verify(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify after the move", st, true)
}
