package check

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/redisssl"
	"github.com/sslconn/sslconn/sslconn"
)

// Engine is one of the four database engines.
type Engine string

// The engines, by the names the --engine flag takes.
const (
	MySQL Engine = "mysql"
	Redis Engine = "redis"
	Mongo Engine = "mongo"
	MSSQL Engine = "mssql"
)

// Engines lists them in the order the demo shows them.
var Engines = []Engine{MySQL, Redis, Mongo, MSSQL}

// ParseEngine accepts an engine name and a few common aliases.
func ParseEngine(s string) (Engine, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mysql", "mariadb":
		return MySQL, nil
	case "redis":
		return Redis, nil
	case "mongo", "mongodb":
		return Mongo, nil
	case "mssql", "sqlserver", "sql-server":
		return MSSQL, nil
	}
	return "", &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--engine",
		Detail: fmt.Sprintf("unknown engine %q; want mysql, redis, mongo or mssql", s)}
}

// DetectEngine tells the engine from the DSN's syntax: redis:// and
// rediss://, mongodb:// and mongodb+srv://, sqlserver://, odbc: and ADO
// "server=...;" strings, and go-sql-driver's user:pass@tcp(host)/db. It
// only picks the adapter; the adapter reads the DSN.
func DetectEngine(dsn string) (Engine, error) {
	l := strings.ToLower(strings.TrimSpace(dsn))
	switch {
	case strings.HasPrefix(l, "redis://"), strings.HasPrefix(l, "rediss://"):
		return Redis, nil
	case strings.HasPrefix(l, "mongodb://"), strings.HasPrefix(l, "mongodb+srv://"):
		return Mongo, nil
	case strings.HasPrefix(l, "sqlserver://"), strings.HasPrefix(l, "odbc:"), hasServerKey(dsn):
		return MSSQL, nil
	case hasMySQLAddr(dsn):
		return MySQL, nil
	}
	return "", &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--engine",
		Detail: "cannot tell the engine from the DSN; pass --engine mysql, redis, mongo or mssql"}
}

// hasServerKey reports whether an ADO string names a server (server=,
// data source=, address= or addr=, not empty).
func hasServerKey(dsn string) bool {
	for _, kv := range strings.Split(dsn, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "server", "data source", "address", "addr":
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// hasMySQLAddr reports whether dsn has go-sql-driver's tcp(...) or
// unix(...), at its start or after the user's '@'.
func hasMySQLAddr(dsn string) bool {
	for _, n := range []string{"tcp(", "unix("} {
		if strings.HasPrefix(dsn, n) || strings.Contains(dsn, "@"+n) {
			return true
		}
	}
	return false
}

// SilenceDrivers stops go-redis and go-sql-driver/mysql from logging to
// standard error: the check reports every failure itself.
func SilenceDrivers() {
	redis.SetLogger(quietRedis{})
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// Connect connects to dsn through the engine's adapter, runs the adapter's
// Verify, and closes everything.
func Connect(ctx context.Context, e Engine, dsn string, opts ...sslconn.Option) (sslconn.Status, error) {
	switch e {
	case MySQL:
		db, err := mysqlssl.Open(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mysqlssl.Verify(ctx, db)
	case Redis:
		c, err := redisssl.NewClient(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Close()
		return redisssl.Verify(ctx, c)
	case Mongo:
		c, err := mongossl.Connect(ctx, dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer c.Disconnect(context.Background())
		return mongossl.Verify(ctx, c)
	case MSSQL:
		db, err := mssqlssl.Open(dsn, opts...)
		if err != nil {
			return sslconn.Status{}, err
		}
		defer db.Close()
		return mssqlssl.Verify(ctx, db)
	}
	return sslconn.Status{}, fmt.Errorf("check: unknown engine %q", e)
}
