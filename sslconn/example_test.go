package sslconn_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
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

// Errors match their sentinel on every engine; the *Error says which mode,
// which host, and which option would change the outcome.
func ExampleError() {
	_, err := sslconn.New(sslconn.WithCA([]byte("not a certificate")))
	fmt.Println(errors.Is(err, sslconn.ErrBadCA))
	var e *sslconn.Error
	if errors.As(err, &e) {
		fmt.Println(e.Option)
	}
	// Output:
	// true
	// sslconn.WithCA
}

// TLSConfig gives the mode's tls.Config for a driver the adapters do not
// cover; verification happens in it, so it can be used as it is.
func ExampleConfig_TLSConfig() {
	cfg, err := sslconn.New(
		sslconn.WithMode(sslconn.VerifyIdentity),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"),
	)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := tls.Dial("tcp", "pgm-bp1xxxx.pg.rds.aliyuncs.com:5432", cfg.TLSConfig("pgm-bp1xxxx.pg.rds.aliyuncs.com"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}

// Every retry of a new connection can be counted, e.g. in metrics.
func ExampleWithRetryCallback() {
	opts := []sslconn.Option{
		sslconn.WithRetryBudget(time.Minute),
		sslconn.WithRetryCallback(func(ev sslconn.RetryEvent) {
			slog.Info("database restarting", "addr", ev.Addr, "attempt", ev.Attempt, "next in", ev.Delay, "error", ev.Err)
		}),
	}
	_ = opts // pass to mysqlssl.Open, redisssl.NewClient, ...
}

// Certificates about to expire are reported once each.
func ExampleWithExpiryWarning() {
	_, err := sslconn.New(sslconn.WithExpiryWarning(60*24*time.Hour, func(w sslconn.ExpiryWarning) {
		slog.Warn("certificate expires soon", "source", w.Source, "subject", w.Subject, "days", int(w.Left.Hours()/24))
	}))
	if err != nil {
		log.Fatal(err)
	}
}

// Connections through an SSH bastion or a SOCKS proxy: the dialer makes the
// TCP connection under every connection, TLS runs on top, verified against
// the database's own name. The same opts, given to every client, have them
// watch a restarting server once between them.
func ExampleWithDialer() {
	bastion := &net.Dialer{Timeout: 5 * time.Second} // e.g. an ssh.Client's DialContext, or a SOCKS dialer
	opts := []sslconn.Option{
		sslconn.WithMode(sslconn.VerifyIdentity),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"),
		sslconn.WithDialer(bastion.DialContext),
	}
	_ = opts // pass to mysqlssl.Open, redisssl.NewClient, mongossl.Connect, mssqlssl.Open, ...
}

// A server that goes silent in a failover holds no operation longer than
// the bound: here 5 s instead of the default 10 s.
func ExampleWithDeadPeerTimeout() {
	opts := []sslconn.Option{
		sslconn.WithDeadPeerTimeout(5 * time.Second), // DSN: dead-peer-timeout=5s; off turns it off
	}
	_ = opts // pass to mysqlssl.Open, redisssl.NewClient, mongossl.Connect, mssqlssl.Open, ...
}
