package mssqlssl_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/microsoft/go-mssqldb/msdsn"

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

// A driver config built in code: its *tls.Config (the CA pool and the name
// to verify) is read, and the connector verifies the identity.
func ExampleNewConnectorFromConfig() {
	pem, err := os.ReadFile("/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg, err := msdsn.Parse("sqlserver://app:secret@10.0.0.9:1433?database=shop&app+name=orders")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Encryption = msdsn.EncryptionRequired
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "rm-bp1xxxx.sqlserver.rds.aliyuncs.com"}
	connector, err := mssqlssl.NewConnectorFromConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
}

// Microsoft Entra ID: every new connection logs in with a fresh access
// token, inside TLS. With github.com/Azure/azure-sdk-for-go/sdk/azidentity
// the provider would be:
//
//	cred, _ := azidentity.NewDefaultAzureCredential(nil)
//	token := func(ctx context.Context) (string, error) {
//		t, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://database.windows.net/.default"}})
//		return t.Token, err
//	}
func ExampleNewAccessTokenConnector() {
	token := func(ctx context.Context) (string, error) { return fetchToken(ctx) } // your credentials provider
	connector, err := mssqlssl.NewAccessTokenConnector("sqlserver://myserver.database.windows.net?database=shop",
		token, sslconn.WithMode(sslconn.VerifyIdentity))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
}

func fetchToken(context.Context) (string, error) { return "token", nil }
