package sslconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// Modes parse from MySQL's and libpq's spellings alike.
func ExampleParseMode() {
	for _, s := range []string{"VERIFY_IDENTITY", "verify-full", "Required", "prefer"} {
		m, err := sslconn.ParseMode(s)
		fmt.Println(m, err)
	}
	_, err := sslconn.ParseMode("VERIFY")
	fmt.Println(errors.Is(err, sslconn.ErrInvalidOption))
	// Output:
	// VERIFY_IDENTITY <nil>
	// VERIFY_IDENTITY <nil>
	// REQUIRED <nil>
	// PREFERRED <nil>
	// true
}

// A Config prints without secrets, for logs.
func ExampleNew() {
	cfg, err := sslconn.New(sslconn.WithMode(sslconn.Required), sslconn.WithServerName("rm-bp1xxxx.mysql.rds.aliyuncs.com"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg)
	// Output:
	// sslconn.Config{mode=REQUIRED ca=system roots server-name="rm-bp1xxxx.mysql.rds.aliyuncs.com" tls=TLSv1.2-default client-cert=false}
}

// Errors match their sentinel on every engine, and say what to change.
func ExampleError() {
	err := sslconn.NewError(sslconn.ErrHostnameMismatch, sslconn.VerifyIdentity, "10.0.0.5:3306", "", nil)
	fmt.Println(errors.Is(err, sslconn.ErrHostnameMismatch), sslconn.IsPermanent(err))
	var e *sslconn.Error
	if errors.As(err, &e) {
		fmt.Println(e.Option)
	}
	// Output:
	// true true
	// ssl-server-name
}

// Dial connects in the configured mode, retrying while the server restarts,
// for engines where TLS wraps the whole connection (the Redis and MongoDB
// adapters use it as their dialer).
func ExampleConfig_Dial() {
	cfg, err := sslconn.New(
		sslconn.WithMode(sslconn.VerifyIdentity),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"),
		sslconn.WithRetryBudget(time.Minute),
		sslconn.WithRetryCallback(func(ev sslconn.RetryEvent) {
			slog.Info("database restarting", "addr", ev.Addr, "attempt", ev.Attempt, "next in", ev.Delay, "error", ev.Err)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := cfg.Dial(context.Background(), "tcp", "r-bp1xxxx.redis.rds.aliyuncs.com:6380", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if c, ok := conn.(*sslconn.Conn); ok {
		fmt.Println(c.Status()) // e.g. TLSv1.3 TLS_AES_128_GCM_SHA256
	}
}

// An audit log of every server certificate, whatever the mode.
func ExampleWithHandshakeObserver() {
	_, err := sslconn.New(sslconn.WithHandshakeObserver(func(host string, cs tls.ConnectionState) {
		if len(cs.PeerCertificates) > 0 {
			leaf := cs.PeerCertificates[0]
			slog.Info("TLS handshake", "host", host, "subject", leaf.Subject.String(),
				"not_after", leaf.NotAfter, "resumed", cs.DidResume, "version", sslconn.VersionName(cs.Version))
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
}
