package redisssl_test

import (
	"context"
	"fmt"
	"log"

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
