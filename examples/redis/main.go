// Command redis connects to Redis in an SSL mode, sets and gets a key, and
// prints the TLS version and cipher of the connection. With -cluster it
// treats the URL as a cluster seed list (repeated addr= parameters).
//
//	go run ./examples/redis -url 'rediss://:secret@r-bp1xxxx.redis.rds.aliyuncs.com:6380/0' \
//	    -ca ApsaraDB-CA-Chain.pem
//	go run ./examples/redis -cluster -url 'redis://:secret@10.0.0.5:6380?addr=10.0.0.6:6380' \
//	    -mode VERIFY_CA -ca ApsaraDB-CA-Chain.pem
//
// Flags fall back to the environment: REDIS_URL, SSL_MODE, SSL_CA.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

func main() {
	rawURL := flag.String("url", os.Getenv("REDIS_URL"), "redis:// or rediss:// URL, may carry ssl-* parameters")
	mode := flag.String("mode", os.Getenv("SSL_MODE"), "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
	ca := flag.String("ca", os.Getenv("SSL_CA"), "CA chain: .pem, .jks, .p7b or the console's zip")
	isCluster := flag.Bool("cluster", false, "connect to a Redis cluster")
	flag.Parse()
	if *rawURL == "" {
		fmt.Fprintln(os.Stderr, "usage: redis -url URL [-mode MODE] [-ca FILE] [-cluster]")
		os.Exit(2)
	}
	if err := run(*rawURL, *mode, *ca, *isCluster); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(rawURL, mode, ca string, isCluster bool) error {
	var opts []sslconn.Option
	if mode != "" {
		m, err := sslconn.ParseMode(mode)
		if err != nil {
			return err
		}
		opts = append(opts, sslconn.WithMode(m))
	}
	if ca != "" {
		opts = append(opts, sslconn.WithCAFile(ca))
	}
	var (
		client redis.UniversalClient
		err    error
	)
	if isCluster {
		client, err = redisssl.NewClusterClient(rawURL, opts...)
	} else {
		client, err = redisssl.NewClient(rawURL, opts...)
	}
	if err != nil {
		return err
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Set(ctx, "sslconn:example", time.Now().Format(time.RFC3339), time.Minute).Err(); err != nil {
		return err
	}
	v, err := client.Get(ctx, "sslconn:example").Result()
	if err != nil {
		return err
	}
	st, err := redisssl.Verify(ctx, client)
	if err != nil {
		return err
	}
	fmt.Println("GET sslconn:example =", v)
	fmt.Println("ssl:", st)
	return nil
}
