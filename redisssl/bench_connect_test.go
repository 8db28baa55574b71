package redisssl

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// The benchmarks compare the library with bare go-redis configured by hand
// for the same mode, in one run; sub-benchmarks are named impl=bare and
// impl=sslconn so that benchstat -col /impl prints the ratio (scripts/bench.sh).

// bareClient is go-redis by hand. Maintenance notifications are off on
// both sides: left on ("auto", go-redis's default, which redisssl keeps)
// they cost a new client 2-8 ms on its first connect against Redis 7.0,
// which has no such command, and would blur the comparison.
func bareClient(b *testing.B, mode sslconn.Mode) *redis.Client {
	certs, servers := env(b)
	return redis.NewClient(&redis.Options{Addr: testenv.Addr(servers[1].TLSPort), Password: testenv.RedisPassword, TLSConfig: matrix.BareTLS(b, certs.CA, mode, "localhost"), PoolSize: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
}

func libClient(b *testing.B, mode sslconn.Mode, opts ...sslconn.Option) *redis.Client {
	certs, servers := env(b)
	c, err := NewClientFromOptions(&redis.Options{Addr: fmt.Sprintf("localhost:%d", servers[1].TLSPort), Password: testenv.RedisPassword, PoolSize: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}},
		append([]sslconn.Option{sslconn.WithMode(mode), sslconn.WithCAFile(certs.CA)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// connectLoop makes a client, connects (TLS handshake, HELLO and AUTH) with
// a PING, and closes it.
func connectLoop(b *testing.B, newClient func() *redis.Client) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := newClient()
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkConnect: one new connection, TLS handshake and login included,
// per mode; floor is crypto/tls's dial and handshake alone.
//
//	go test -run '^$' -bench Connect -benchmem ./redisssl
func BenchmarkConnect(b *testing.B) {
	env(b) // the servers start here, not in a timed loop
	for _, mode := range matrix.BenchModes {
		b.Run(mode.String()+"/impl=bare", func(b *testing.B) {
			connectLoop(b, func() *redis.Client { return bareClient(b, mode) })
		})
		// As shipped: reconnects resume TLS sessions where the server allows.
		b.Run(mode.String()+"/impl=sslconn", func(b *testing.B) {
			connectLoop(b, func() *redis.Client { return libClient(b, mode) })
		})
		// Resumption off, like the bare driver: the like-for-like cost.
		b.Run(mode.String()+"/impl=sslconn-noresume", func(b *testing.B) {
			connectLoop(b, func() *redis.Client { return libClient(b, mode, sslconn.WithSessionCache(nil)) })
		})
	}
	// The floor: the TLS handshake alone, with crypto/tls (last, so that
	// benchstat compares it with the bare driver).
	b.Run("REQUIRED/impl=tls-floor", func(b *testing.B) {
		_, servers := env(b)
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", testenv.Addr(servers[1].TLSPort), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkResume: reconnecting with a shared session cache (the
// library's default) against none; resumed/op says how many resumed.
func BenchmarkResume(b *testing.B) {
	env(b) // the servers start here, not in a timed loop
	matrix.BenchResume(b, func(b *testing.B, opts ...sslconn.Option) {
		connectLoop(b, func() *redis.Client { return libClient(b, sslconn.VerifyIdentity, opts...) })
	})
}

// BenchmarkQuery: PING on one open TLS connection, library against bare
// go-redis: the library must add nothing per command.
func BenchmarkQuery(b *testing.B) {
	env(b) // the servers start here, not in a timed loop
	for _, impl := range []string{"bare", "sslconn"} {
		b.Run("impl="+impl, func(b *testing.B) {
			c := bareClient(b, sslconn.VerifyIdentity)
			if impl == "sslconn" {
				c = libClient(b, sslconn.VerifyIdentity)
			}
			defer c.Close()
			ctx := context.Background()
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Ping(ctx).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnectPlaintext: PREFERRED, the default, against a Redis that
// serves plaintext only, next to bare go-redis in plaintext. first: a new
// client's first connection, the process knowing nothing of the address
// (the library has to find out that the port does not speak TLS);
// newclient: a new client's first connection, at an address another
// client of the process has dialed; later: a new connection of a client
// that has connected before.
//
//	go test -run '^$' -bench ConnectPlaintext ./redisssl
func BenchmarkConnectPlaintext(b *testing.B) {
	_, servers := env(b)
	addr := testenv.Addr(servers[1].Port)
	opts := func() *redis.Options {
		return &redis.Options{Addr: addr, Password: testenv.RedisPassword, PoolSize: 1,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
	}
	clients := map[string]func(b *testing.B, o *redis.Options) *redis.Client{
		"bare": func(_ *testing.B, o *redis.Options) *redis.Client { return redis.NewClient(o) },
		"sslconn": func(b *testing.B, o *redis.Options) *redis.Client {
			c, err := NewClientFromOptions(o, sslconn.WithMode(sslconn.Preferred))
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	}
	for _, impl := range []string{"bare", "sslconn"} {
		b.Run("first/impl="+impl, func(b *testing.B) {
			connectLoop(b, func() *redis.Client {
				core.ForgetPreferred(addr)
				return clients[impl](b, opts())
			})
		})
		b.Run("newclient/impl="+impl, func(b *testing.B) {
			c := clients[impl](b, opts()) // the process learns the address
			if err := c.Ping(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			c.Close()
			connectLoop(b, func() *redis.Client { return clients[impl](b, opts()) })
		})
		// A connection idle for a nanosecond is replaced: every PING
		// below is made on a new connection of the same client.
		b.Run("later/impl="+impl, func(b *testing.B) {
			o := opts()
			o.ConnMaxIdleTime = time.Nanosecond
			c := clients[impl](b, o)
			defer c.Close()
			ctx := context.Background()
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Ping(ctx).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
