package redisssl_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect to an ApsaraDB Redis instance with the console's CA chain; rediss://
// verifies the host name, as go-redis does.
func ExampleNewClient() {
	rdb, err := redisssl.NewClient("rediss://:secret@r-bp1xxxx.redis.rds.aliyuncs.com:6380/0" +
		"?ssl-ca=/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		log.Fatal(err) // e.g. errors.Is(err, sslconn.ErrUnknownAuthority)
	}
	st, _ := redisssl.Verify(ctx, rdb)
	fmt.Println(st.Version, st.Cipher)
}

// A cluster whose nodes are announced by IP: VERIFY_CA checks every node's
// chain; VERIFY_IDENTITY would check each against ssl-server-name.
func ExampleNewClusterClient() {
	rdb, err := redisssl.NewClusterClient("redis://:secret@10.0.0.5:6380?addr=10.0.0.6:6380&addr=10.0.0.7:6380",
		sslconn.WithMode(sslconn.VerifyCA),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"))
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
}

// Redis behind Sentinel: the URL names a Sentinel (more with addr=), the
// master and its password; failovers move the client to the new master.
func ExampleNewFailoverClient() {
	rdb, err := redisssl.NewFailoverClient("redis://:sentinel-secret@10.0.0.5:26380/0" +
		"?addr=10.0.0.6:26380&master_name=mymaster&password=secret" +
		"&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ssl/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
}

// Options built in code keep what they set: here a CredentialsProvider
// that hands every new connection a fresh token, and an OnConnect hook.
// The TLSConfig maps onto VERIFY_IDENTITY, its RootCAs and ServerName are
// used; the Dialer (an SSH tunnel, say) carries the TLS.
func ExampleNewClientFromOptions() {
	rdb, err := redisssl.NewClientFromOptions(&redis.Options{
		Addr: "10.0.0.12:6380",
		CredentialsProvider: func() (string, string) {
			return "app", fetchToken() // your credentials provider
		},
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.ClientSetName(ctx, "checkout").Err()
		},
		TLSConfig: &tls.Config{RootCAs: caPool(), ServerName: "r-bp1xxxx.redis.rds.aliyuncs.com"},
		Dialer:    tunnel.DialContext,
		PoolSize:  20,
	})
	if err != nil {
		log.Fatal(err) // e.g. InsecureSkipVerify with sslconn.WithMode(sslconn.VerifyCA)
	}
	defer rdb.Close()
}

// A cluster client from options: every node, seed or discovered, is
// verified against the CA; a NewClient set in the options still builds the
// node clients.
func ExampleNewClusterClientFromOptions() {
	rdb, err := redisssl.NewClusterClientFromOptions(&redis.ClusterOptions{
		Addrs:    []string{"10.0.0.5:6380", "10.0.0.6:6380"},
		Password: "secret",
	}, sslconn.WithMode(sslconn.VerifyCA), sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"))
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
}

// Redis behind Sentinel, from options: Sentinels, master and replicas
// verified in the same mode.
func ExampleNewFailoverClientFromOptions() {
	rdb, err := redisssl.NewFailoverClientFromOptions(&redis.FailoverOptions{
		MasterName:       "mymaster",
		SentinelAddrs:    []string{"10.0.0.5:26380", "10.0.0.6:26380"},
		SentinelPassword: "sentinel-secret",
		Password:         "secret",
	}, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile("/etc/ssl/ca.pem"),
		sslconn.WithServerName("redis.internal")) // Sentinel announces IPs
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
}

// The client go-redis's NewUniversalClient would pick: one address is a
// standalone client, several a cluster client, MasterName a Sentinel one.
func ExampleNewUniversalClientFromOptions() {
	rdb, err := redisssl.NewUniversalClientFromOptions(&redis.UniversalOptions{
		Addrs:    []string{"r-bp1xxxx.redis.rds.aliyuncs.com:6380"},
		Password: "secret",
	}, sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"))
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	st, err := redisssl.Verify(context.Background(), rdb)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Version, st.Cipher)
}

func fetchToken() string { return "token" }

func caPool() *x509.CertPool {
	pem, err := os.ReadFile("/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

var tunnel net.Dialer // stands for an SSH or SOCKS dialer
