package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/serve"
	"github.com/sslconn/sslconn/sslconn"
)

// benchTLSServer is a TLS server on loopback for the telemetry
// benchmarks: it completes each handshake and holds the connection until
// the client closes it.
func benchTLSServer(b *testing.B) (addr string, ca []byte, chain []*x509.Certificate) {
	b.Helper()
	root := makeCert(b, "bench-ca", nil, true, time.Now().Add(365*24*time.Hour), nil)
	leaf := makeCert(b, "bench-server", []string{"localhost"}, false, time.Now().Add(90*24*time.Hour), root)
	conf := &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert()}}
	l, err := serve.Start(func(c net.Conn) {
		tc := tls.Server(c, conf)
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	return l.Addr(), []byte(root.pem()), []*x509.Certificate{leaf.cert}
}

// BenchmarkTelemetryConnect: a new VERIFY_IDENTITY connection (TCP, TLS
// 1.3 resuming its session as shipped, verification) from Config.Dial,
// without telemetry (telemetry=off: the hooks' nil checks only) and with
// it on OpenTelemetry's global providers as a process has them until it
// sets its own (telemetry=global-noop), in one run.
func BenchmarkTelemetryConnect(b *testing.B) {
	addr, ca, _ := benchTLSServer(b)
	for _, on := range []bool{false, true} {
		cfg, err := newConfig(sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCA(ca), sslconn.WithServerName("localhost"))
		if err != nil {
			b.Fatal(err)
		}
		name := "telemetry=global-noop"
		if !on {
			cfg.tel, name = nil, "telemetry=off"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				c, err := cfg.Dial(ctx, "tcp", addr, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkTelemetryHooks: what telemetry adds to one such connection,
// alone: the connection's record and span, one attempt, one handshake,
// the certificate it verified, on the global providers (nothing set).
func BenchmarkTelemetryHooks(b *testing.B) {
	_, ca, chain := benchTLSServer(b)
	cfg, err := newConfig(sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCA(ca))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		cctx, rec := cfg.tel.connecting(ctx, sslconn.VerifyIdentity, "127.0.0.1:3306")
		actx, span := rec.attempt(cctx, 1)
		_, hs := cfg.tel.handshake(actx, sslconn.VerifyIdentity)
		handshaken(hs, nil, nil)
		cfg.tel.seeCerts("server", "localhost", chain)
		noteMade(actx, sslconn.VerifyIdentity, nil)
		rec.attempted(span, nil)
		rec.done(cctx, nil)
	}
}
