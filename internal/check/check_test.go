package check

import (
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

func TestDetectEngineAndEndpoint(t *testing.T) {
	tests := []struct {
		dsn    string
		engine Engine
		addr   string
	}{
		{"app:pw@tcp(rm-1.mysql.rds.aliyuncs.com:3306)/shop?ssl-mode=REQUIRED", MySQL, "rm-1.mysql.rds.aliyuncs.com:3306"},
		{"app:p@ss@tcp([::1]:3306)/db", MySQL, "[::1]:3306"},
		{"tcp(127.0.0.1:3307)/db", MySQL, "127.0.0.1:3307"},
		{"app:pw@unix(/run/mysqld.sock)/db", MySQL, "/run/mysqld.sock"},
		{"redis://:pw@r-1:6379/0", Redis, "r-1:6379"},
		{"rediss://u:pw@10.0.0.5:6380?addr=10.0.0.6:6380", Redis, "10.0.0.5:6380"},
		{"mongodb://u:pw@dds-a:3717,dds-b:3717/admin?replicaSet=rs", Mongo, "dds-a:3717"},
		{"mongodb+srv://u:pw@cluster.example.com/", Mongo, "cluster.example.com"},
		{"sqlserver://sa:pw@rm-2:1433?database=db", MSSQL, "rm-2:1433"},
		{"server=tcp:rm-2,1433;user id=sa;password=pw", MSSQL, "rm-2:1433"},
		{"odbc:server=rm-2;uid=sa;pwd={pw}", MSSQL, "rm-2"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			e, err := DetectEngine(tt.dsn)
			if err != nil || e != tt.engine {
				t.Fatalf("engine %q %v, want %q", e, err, tt.engine)
			}
			if got := Endpoint(e, tt.dsn); got != tt.addr {
				t.Errorf("endpoint %q, want %q", got, tt.addr)
			}
		})
	}
	if _, err := DetectEngine("host=db;pwd=x"); err == nil {
		t.Error("an ambiguous DSN was given an engine")
	}
}

func TestRequestedModeFromDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want sslconn.Mode
	}{
		{"app:pw@tcp(h:3306)/db", sslconn.Preferred},
		{"app:pw@tcp(h:3306)/db?ssl-ca=/ca.pem", sslconn.VerifyCA},
		{"app:pw@tcp(h:3306)/db?ssl-ca=/ca.pem&sslMode=required", sslconn.Required},
		{"mongodb://h/?tlsCAFile=/ca.pem", sslconn.VerifyCA},
		{"server=h;password=x;ssl_mode=verify-full", sslconn.VerifyIdentity},
	}
	for _, tt := range tests {
		var o Options
		if err := fromDSN(tt.dsn, &o); err != nil || o.Mode != tt.want {
			t.Errorf("%s: %v %v, want %v", tt.dsn, o.Mode, err, tt.want)
		}
	}
}
