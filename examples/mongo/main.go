// Command mongo connects to MongoDB in an SSL mode, inserts and finds a
// document, and prints the TLS version and cipher of the connection.
//
//	go run ./examples/mongo -uri 'mongodb://app:secret@dds-bp1xxxx.mongodb.rds.aliyuncs.com:3717/admin?replicaSet=mgset-1' \
//	    -mode VERIFY_IDENTITY -ca ApsaraDB-CA-Chain.pem
//
// Flags fall back to the environment: MONGODB_URI, SSL_MODE, SSL_CA.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/sslconn"
)

func main() {
	uri := flag.String("uri", os.Getenv("MONGODB_URI"), "mongodb:// or mongodb+srv:// URI, may carry ssl-* parameters")
	mode := flag.String("mode", os.Getenv("SSL_MODE"), "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
	ca := flag.String("ca", os.Getenv("SSL_CA"), "CA chain: .pem, .jks, .p7b or the console's zip")
	flag.Parse()
	if *uri == "" {
		fmt.Fprintln(os.Stderr, "usage: mongo -uri URI [-mode MODE] [-ca FILE]")
		os.Exit(2)
	}
	if err := run(*uri, *mode, *ca); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(uri, mode, ca string) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongossl.Connect(ctx, uri, opts...)
	if err != nil {
		return err // certificate and TLS errors come back here, typed, within seconds
	}
	defer client.Disconnect(context.Background())

	coll := client.Database("sslconn_example").Collection("greetings")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "text", Value: "hello"}, {Key: "at", Value: time.Now()}}); err != nil {
		return err
	}
	var doc bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "text", Value: "hello"}}).Decode(&doc); err != nil {
		return err
	}
	st, err := mongossl.Verify(ctx, client)
	if err != nil {
		return err
	}
	fmt.Println("found:", doc["text"])
	fmt.Println("ssl:", st)
	return nil
}
