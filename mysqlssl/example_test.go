package mysqlssl_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Connect to an RDS MySQL instance with the CA chain downloaded from the
// console, verifying the endpoint's name, as the guide's VERIFY_IDENTITY.
func ExampleOpen() {
	db, err := mysqlssl.Open("app:secret@tcp(rm-bp1xxxx.mysql.rds.aliyuncs.com:3306)/shop" +
		"?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ssl/ApsaraDB-CA-Chain.pem")
	if err != nil {
		log.Fatal(err) // a bad DSN, mode or CA file: typed, and never holds the password
	}
	defer db.Close()

	st, err := mysqlssl.Verify(context.Background(), db)
	if err != nil {
		log.Fatal(err) // e.g. errors.Is(err, sslconn.ErrHostnameMismatch)
	}
	fmt.Println(st.Version, st.Cipher)
}

// Options in code win over the DSN; the retry callback sees every reconnect
// attempt while the instance restarts (enabling SSL restarts it).
func ExampleNewConnector() {
	connector, err := mysqlssl.NewConnector("app:secret@tcp(10.0.0.12:3306)/shop",
		sslconn.WithMode(sslconn.VerifyIdentity),
		sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.jks"), // password apsaradb by default
		sslconn.WithServerName("rm-bp1xxxx.mysql.rds.aliyuncs.com"),
		sslconn.WithRetryBudget(2*time.Minute),
		sslconn.WithRetryCallback(func(e sslconn.RetryEvent) {
			slog.Info("reconnecting", "attempt", e.Attempt, "cause", e.Err)
		}))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector) // closing db closes the connector
	defer db.Close()
}

// Code that uses sql.Open keeps doing so under the name "mysqlssl".
func Example_sqlOpen() {
	db, err := sql.Open("mysqlssl", "app:secret@tcp(db.internal:3306)/shop?ssl-mode=REQUIRED")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// A config built in code keeps its hooks: here a BeforeConnect that puts a
// fresh IAM token into every new connection, as RDS and Azure ask.
func ExampleNewConnectorFromConfig() {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "app", "tcp", "rm-bp1xxxx.mysql.rds.aliyuncs.com:3306", "shop"
	err := cfg.Apply(mysql.BeforeConnect(func(ctx context.Context, c *mysql.Config) error {
		token, err := fetchToken(ctx) // your credentials provider
		c.Passwd = token
		return err
	}))
	if err != nil {
		log.Fatal(err)
	}
	connector, err := mysqlssl.NewConnectorFromConfig(cfg,
		sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile("/etc/ssl/ApsaraDB-CA-Chain.pem"))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
}

func fetchToken(context.Context) (string, error) { return "token", nil }
