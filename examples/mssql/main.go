// Command mssql connects to SQL Server in an SSL mode, runs SELECT @@VERSION
// and prints whether the server reports the session encrypted, with the TLS
// version and cipher.
//
//	go run ./examples/mssql -dsn 'sqlserver://app:secret@rm-bp1xxxx.sqlserver.rds.aliyuncs.com:1433?database=shop' \
//	    -mode VERIFY_IDENTITY -ca ApsaraDB-CA-Chain.pem
//
// Instances that speak only TLS 1.0/1.1 need tls-version=TLSv1,TLSv1.1,TLSv1.2
// in the DSN. Flags fall back to the environment: MSSQL_DSN, SSL_MODE, SSL_CA.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("MSSQL_DSN"), "sqlserver:// URL, ADO or odbc: string, may carry ssl-* parameters")
	mode := flag.String("mode", os.Getenv("SSL_MODE"), "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
	ca := flag.String("ca", os.Getenv("SSL_CA"), "CA chain: .pem, .jks, .p7b or the console's zip")
	flag.Parse()
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "usage: mssql -dsn DSN [-mode MODE] [-ca FILE]")
		os.Exit(2)
	}
	if err := run(*dsn, *mode, *ca); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dsn, mode, ca string) error {
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
	db, err := mssqlssl.Open(dsn, opts...)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT @@VERSION").Scan(&version); err != nil {
		return err
	}
	st, err := mssqlssl.Verify(ctx, db)
	if err != nil {
		return err
	}
	fmt.Println("server:", version)
	fmt.Println("ssl:", st)
	return nil
}
