package check

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"regexp"
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

var mysqlAddr = regexp.MustCompile(`(?:^|@)(tcp|unix)\(([^)]*)\)`)

// DetectEngine tells the engine from the DSN's syntax: redis:// and
// rediss://, mongodb:// and mongodb+srv://, sqlserver://, odbc: and ADO
// "server=...;" strings, and go-sql-driver's user:pass@tcp(host)/db.
func DetectEngine(dsn string) (Engine, error) {
	l := strings.ToLower(strings.TrimSpace(dsn))
	switch {
	case strings.HasPrefix(l, "redis://"), strings.HasPrefix(l, "rediss://"):
		return Redis, nil
	case strings.HasPrefix(l, "mongodb://"), strings.HasPrefix(l, "mongodb+srv://"):
		return Mongo, nil
	case strings.HasPrefix(l, "sqlserver://"), strings.HasPrefix(l, "odbc:"), adoServer(dsn) != "":
		return MSSQL, nil
	case mysqlAddr.MatchString(dsn):
		return MySQL, nil
	}
	return "", &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--engine",
		Detail: "cannot tell the engine from the DSN; pass --engine mysql, redis, mongo or mssql"}
}

// adoServer returns the server= value of an ADO or ODBC string, or "".
func adoServer(dsn string) string {
	for _, kv := range strings.Split(strings.TrimPrefix(dsn, "odbc:"), ";") {
		k, v, ok := strings.Cut(kv, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "server", "data source", "address", "addr":
			if ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// Endpoint returns the host:port (or socket) a DSN connects to first, for
// reports; it holds no credentials.
func Endpoint(e Engine, dsn string) string {
	switch e {
	case MySQL:
		if m := mysqlAddr.FindStringSubmatch(dsn); m != nil {
			if m[2] == "" {
				return "127.0.0.1:3306"
			}
			return m[2]
		}
	case MSSQL:
		if s := adoServer(dsn); s != "" && !strings.HasPrefix(strings.ToLower(dsn), "sqlserver://") {
			s = strings.TrimPrefix(strings.TrimPrefix(s, "tcp:"), "TCP:")
			if h, p, ok := strings.Cut(s, ","); ok {
				return net.JoinHostPort(strings.TrimSpace(h), strings.TrimSpace(p))
			}
			return s
		}
		fallthrough
	default:
		if u, err := url.Parse(dsn); err == nil && u.Host != "" {
			return strings.Split(u.Host, ",")[0]
		}
		// mongodb://a:1,b:2 does not parse as a URL: take the first host.
		rest := dsn[strings.Index(dsn, "//")+2:]
		if i := strings.LastIndex(rest[:strings.IndexAny(rest+"/", "/?")], "@"); i >= 0 {
			rest = rest[i+1:]
		}
		rest = rest[:strings.IndexAny(rest+"/", "/?")]
		return strings.Split(rest, ",")[0]
	}
	return ""
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
