package mongocore

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/serve"
	"github.com/sslconn/sslconn/sslconn"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"LocalHost:27018", "localhost:27018"},
		{"db.example.com", "db.example.com:27017"},
		{"[::1]", "[::1]:27017"},
		{"[::1]:1234", "[::1]:1234"},
		{"/tmp/mongodb-27017.sock", "/tmp/mongodb-27017.sock"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := canonical(tc.in); got != tc.want {
				t.Errorf("canonical(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// server answers each connection's first message with answer (nil: it
// closes the connection), on a loopback listener closed at the end of t.
func server(t *testing.T, answer []byte) string {
	t.Helper()
	l, err := serve.Start(func(c net.Conn) {
		if _, err := c.Read(make([]byte, 64)); err != nil || answer == nil {
			return
		}
		_, _ = c.Write(answer)
		_, _ = io.Copy(io.Discard, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l.Addr()
}

// TestPark: the driver's first dial to the address gets the parked
// connection, and Wait returns what its first read got; a failed Connect
// refuses later dials and closes what was dialed.
func TestPark(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer []byte
		want   error // nil: Wait succeeds
	}{
		{"answer", []byte("\x10\x00\x00\x00reply..."), nil},
		{"tls-alert", []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a}, sslconn.ErrServerRequiresTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := server(t, tc.answer)
			d, err := FromOptions("mongossl", nil, nil, "", "", []sslconn.Option{sslconn.WithMode(sslconn.Disabled)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := Park(ctx, d, []string{addr})
			if err != nil {
				t.Fatal(err)
			}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*parkedConn); !ok {
				t.Fatalf("the first dial got a %T, not the parked connection", c)
			}
			_, _ = c.Write([]byte("hello"))
			_, _ = c.Read(make([]byte, 4))
			err = p.Wait(ctx)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
				c2, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()
				if _, ok := c2.(*parkedConn); ok {
					t.Fatal("a second dial got a parked connection")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Wait: %v, want %v", err, tc.want)
			}
			if _, err := d.DialContext(ctx, "tcp", addr); !errors.Is(err, tc.want) {
				t.Fatalf("a dial after Connect failed: %v, want it refused with %v", err, tc.want)
			}
		})
	}
}
