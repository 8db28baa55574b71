package mongossl_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect to an ApsaraDB replica set with the console's CA chain; each
// member is verified against its own name.
func ExampleConnect() {
	ctx := context.Background()
	client, err := mongossl.Connect(ctx, "mongodb://app:secret@dds-bp1aaaa.mongodb.rds.aliyuncs.com:3717,"+
		"dds-bp1bbbb.mongodb.rds.aliyuncs.com:3717/admin?replicaSet=mgset-1"+
		"&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err) // e.g. errors.Is(err, sslconn.ErrHostnameMismatch), within seconds
	}
	defer client.Disconnect(ctx)
	st, _ := mongossl.Verify(ctx, client)
	fmt.Println(st.Version, st.Cipher)
}

// Assemble the client yourself: the options carry the TLS dialer.
//
//v1:replace mongo.Connect(opts) => mongo.Connect(context.Background(), opts)
func ExampleClientOptions() {
	opts, err := mongossl.ClientOptions("mongodb://10.0.0.8:3717/?tls=true&tlsAllowInvalidHostnames=true",
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.jks"))
	if err != nil {
		log.Fatal(err)
	}
	opts.SetAppName("orders")
	client, err := mongo.Connect(opts) // VERIFY_CA: tlsAllowInvalidHostnames does what it says
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
}

// Options built in code keep everything set on them: here a command
// monitor (otelmongo.NewMonitor() fits the same place), a pool size and a
// dialer of your own, under TLS in VERIFY_IDENTITY. Errors come back as
// fast, and as typed, as Connect's.
func ExampleConnectOptions() {
	ctx := context.Background()
	co := options.Client().
		ApplyURI("mongodb://app:secret@dds-bp1aaaa.mongodb.rds.aliyuncs.com:3717/admin").
		SetAppName("orders").
		SetMaxPoolSize(20).
		SetDialer(&net.Dialer{Timeout: 5 * time.Second}). // e.g. through an SSH tunnel
		SetMonitor(&event.CommandMonitor{
			Started: func(_ context.Context, e *event.CommandStartedEvent) { log.Println("mongo:", e.CommandName) },
		})
	client, err := mongossl.ConnectOptions(ctx, co,
		sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"))
	if err != nil {
		log.Fatal(err) // e.g. errors.Is(err, sslconn.ErrHostnameMismatch), within seconds
	}
	defer client.Disconnect(ctx)
}
