// Command ferretdb-test is the MongoDB-wire test server: FerretDB v1.24.2
// (embedded, SQLite backend) with its plaintext and TLS listeners, plus a TLS
// terminator limited to chosen versions for the legacy-TLS scenario, which
// FerretDB's own listener cannot be. It lives in a module of its own so that
// FerretDB's dependencies stay out of the library's go.mod.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	var (
		listen  = flag.String("listen", "", "plaintext listen address")
		tlsAddr = flag.String("tls", "", "TLS listen address")
		cert    = flag.String("cert", "", "server certificate (PEM)")
		key     = flag.String("key", "", "server key (PEM)")
		ca      = flag.String("ca", "", "CA for client certificates (makes them required)")
		data    = flag.String("data", "", "SQLite data directory")
		legacy  = flag.String("tls-versions", "", "serve TLS through a terminator limited to these versions, e.g. TLSv1,TLSv1.1")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	conf := &ferretdb.Config{
		Handler:   "sqlite",
		SQLiteURL: "file:" + strings.TrimSuffix(*data, "/") + "/",
		Logger:    logger,
	}
	conf.Listener.TCP = *listen
	if *tlsAddr != "" && *legacy == "" {
		conf.Listener.TLS = *tlsAddr
		conf.Listener.TLSCertFile, conf.Listener.TLSKeyFile, conf.Listener.TLSCAFile = *cert, *key, *ca
	}
	if *legacy != "" {
		// The terminator forwards to a private plaintext listener.
		if conf.Listener.TCP == "" {
			conf.Listener.TCP = "127.0.0.1:0"
		}
	}
	f, err := ferretdb.New(conf)
	if err != nil {
		log.Fatal(err)
	}
	if *legacy != "" {
		go terminate(ctx, *tlsAddr, *cert, *key, *legacy, f)
	}
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// terminate serves TLS limited to the given versions on addr and forwards to
// FerretDB's plaintext listener.
func terminate(ctx context.Context, addr, certFile, keyFile, versions string, f *ferretdb.FerretDB) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		log.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS10}
	for _, v := range strings.Split(versions, ",") {
		ver := map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.0": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}[strings.TrimSpace(v)]
		conf.MinVersion, conf.MaxVersion = min(conf.MinVersion, ver), max(conf.MaxVersion, ver)
	}
	l, err := tls.Listen("tcp", addr, conf)
	if err != nil {
		log.Fatal(err)
	}
	go func() { <-ctx.Done(); l.Close() }()
	backend := strings.TrimPrefix(f.MongoDBURI(), "mongodb://")
	backend = strings.SplitN(backend, "/", 2)[0]
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			b, err := net.Dial("tcp", backend)
			if err != nil {
				return
			}
			defer b.Close()
			go io.Copy(b, c)
			io.Copy(c, b)
		}()
	}
}
