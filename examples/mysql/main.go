// Command mysql connects to MySQL or MariaDB in an SSL mode, as the cloud
// guides' Java and Python samples do, and prints the server version and the
// TLS version and cipher the server reports for the session.
//
//	go run ./examples/mysql -dsn 'app:secret@tcp(rm-xxx.mysql.rds.aliyuncs.com:3306)/shop' \
//	    -mode VERIFY_IDENTITY -ca ApsaraDB-CA-Chain.pem
//
// Flags fall back to the environment: MYSQL_DSN, SSL_MODE, SSL_CA.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("MYSQL_DSN"), "go-sql-driver/mysql DSN, may carry ssl-* parameters")
	mode := flag.String("mode", os.Getenv("SSL_MODE"), "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
	ca := flag.String("ca", os.Getenv("SSL_CA"), "CA chain: .pem, .jks, .p7b or the console's zip")
	flag.Parse()
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "usage: mysql -dsn DSN [-mode MODE] [-ca FILE]")
		os.Exit(2)
	}
	if err := run(*dsn, *mode, *ca); err != nil {
		fmt.Fprintln(os.Stderr, err)
		switch {
		case errors.Is(err, sslconn.ErrHostnameMismatch):
			fmt.Fprintln(os.Stderr, "hint: -mode VERIFY_CA checks the chain only")
		case errors.Is(err, sslconn.ErrServerNoTLS):
			fmt.Fprintln(os.Stderr, "hint: enable SSL on the instance first")
		}
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
	db, err := mysqlssl.Open(dsn, opts...)
	if err != nil {
		return err
	}
	defer db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}
	st, err := mysqlssl.Verify(ctx, db)
	if err != nil {
		return err
	}
	fmt.Println("server:", version)
	if st.Encrypted {
		fmt.Printf("ssl: %s %s\n", st.Version, st.Cipher)
	} else {
		fmt.Println("ssl: none (plaintext)")
	}
	return nil
}
