package mssqlssl_test

import (
	"context"
	"fmt"
	"log"

	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect to an RDS SQL Server instance with the console's CA chain.
func ExampleOpen() {
	db, err := mssqlssl.Open("sqlserver://app:secret@rm-bp1xxxx.sqlserver.rds.aliyuncs.com:1433" +
		"?database=shop&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, err := mssqlssl.Verify(context.Background(), db) // the server's encrypt_option, the client's cipher
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Encrypted, st.Version, st.Cipher)
}

// An instance that speaks only TLS 1.0/1.1, by its ADO connection string.
func ExampleNewConnector() {
	_, err := mssqlssl.NewConnector("server=10.0.0.9;user id=app;password=secret;database=shop",
		sslconn.WithMode(sslconn.VerifyCA),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.p7b"),
		sslconn.WithTLSVersions(0x0301, 0)) // tls.VersionTLS10
	if err != nil {
		log.Fatal(err)
	}
}
