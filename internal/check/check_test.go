package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sslconn/sslconn/mssqlssl"
	"github.com/sslconn/sslconn/mysqlssl"
	"github.com/sslconn/sslconn/sslconn"
)

// TestDetectEngineAndAddress: the engine comes from the DSN's syntax, the
// address from the engine's adapter, as it dials.
func TestDetectEngineAndAddress(t *testing.T) {
	tests := []struct {
		dsn    string
		engine Engine
		addr   string
	}{
		{"app:pw@tcp(rm-1.mysql.rds.aliyuncs.com:3306)/shop?ssl-mode=REQUIRED", MySQL, "rm-1.mysql.rds.aliyuncs.com:3306"},
		{"app:p@ss@tcp([::1]:3306)/db", MySQL, "[::1]:3306"},
		{"tcp(127.0.0.1:3307)/db", MySQL, "127.0.0.1:3307"},
		{"app:pw@tcp(rm-1)/db", MySQL, "rm-1:3306"},
		{"app:pw@unix(/run/mysqld.sock)/db", MySQL, "/run/mysqld.sock"},
		{"redis://:pw@r-1:6379/0", Redis, "r-1:6379"},
		{"rediss://u:pw@10.0.0.5:6380", Redis, "10.0.0.5:6380"},
		{"redis://r-1/0", Redis, "r-1:6379"},
		{"mongodb://u:pw@dds-a:3717,dds-b:3717/admin?replicaSet=rs", Mongo, "dds-a:3717"},
		{"mongodb://dds-a/admin", Mongo, "dds-a"},
		{"sqlserver://sa:pw@rm-2:1433?database=db", MSSQL, "rm-2:1433"},
		{"server=tcp:rm-2,1433;user id=sa;password=pw", MSSQL, "rm-2:1433"},
		{"odbc:server=rm-2;uid=sa;pwd={pw}", MSSQL, "rm-2:1433"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			e, err := DetectEngine(tt.dsn)
			if err != nil || e != tt.engine {
				t.Fatalf("engine %q %v, want %q", e, err, tt.engine)
			}
			res, _, err := resolve(e, tt.dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Addrs) == 0 || res.Addrs[0] != tt.addr {
				t.Errorf("addresses %q, want %q first", res.Addrs, tt.addr)
			}
		})
	}
	if _, err := DetectEngine("host=db;pwd=x"); err == nil {
		t.Error("an ambiguous DSN was given an engine")
	}
}

// TestChainJudgedAsAdapterReads: the CA and the host name the report
// judges the chain with are the adapter's reading of the DSN, the
// drivers' own parameters included, and the command's flags override it.
func TestChainJudgedAsAdapterReads(t *testing.T) {
	ca, other := writeCA(t), writeCA(t)
	tests := []struct {
		dsn      string
		o        Options
		ca, host string
	}{
		{"app:pw@tcp(db.example:3306)/db", Options{}, "system roots", "db.example"},
		{"app:pw@tcp(10.0.0.1:3306)/db?ssl-ca=" + ca + "&ssl-server-name=db.example", Options{}, ca, "db.example"},
		{"app:pw@tcp(10.0.0.1:3306)/db?ssl-ca=" + ca, Options{CAFile: other, ServerName: "x.example"}, other, "x.example"},
		{"rediss://:pw@r-1:6380/0?ssl-ca=" + ca, Options{}, ca, "r-1"},
		{"mongodb://h:27017/?tlsCAFile=" + ca, Options{}, ca, "h"},
		{"sqlserver://sa:pw@10.0.0.2?certificate=" + ca + "&hostNameInCertificate=sql.example", Options{}, ca, "sql.example"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			e, err := DetectEngine(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			var opts []sslconn.Option
			if tt.o.CAFile != "" {
				opts = append(opts, sslconn.WithCAFile(tt.o.CAFile), sslconn.WithServerName(tt.o.ServerName))
			}
			res, _, err := resolve(e, tt.dsn, tt.o, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ch := analyse([]*x509.Certificate{readCert(t, ca)}, res.Config, res.Addrs[0])
			if ch.CA != tt.ca || ch.Host != tt.host {
				t.Errorf("judged against CA %q and host %q, want %q and %q", ch.CA, ch.Host, tt.ca, tt.host)
			}
		})
	}
}

// TestRequestedModeMatchesAdapters: the command resolves the mode a DSN
// asks for exactly as the adapter that would connect with it.
func TestRequestedModeMatchesAdapters(t *testing.T) {
	ca := writeCA(t)
	tests := []struct {
		dsn  string
		want sslconn.Mode
	}{
		{"app:pw@tcp(h:3306)/db", sslconn.Preferred},
		{"app:pw@tcp(h:3306)/db?ssl-ca=" + ca, sslconn.VerifyCA},
		{"app:pw@tcp(h:3306)/db?ssl-ca=" + ca + "&sslMode=required", sslconn.Required},
		{"app:pw@tcp(h:3306)/db?tls=true&ssl-ca=" + ca, sslconn.VerifyIdentity},
		{"app:pw@tcp(h:3306)/db?tls=true&ssl-mode=VERIFY_CA&ssl-ca=" + ca, sslconn.VerifyCA},
		{"app:pw@tcp(h:3306)/db?tls=skip-verify", sslconn.Required},
		{"app:pw@tcp(h:3306)/db?tls=preferred&ssl-ca=" + ca, sslconn.Preferred},
		{"redis://:pw@h:6379/0", sslconn.Preferred},
		{"redis://:pw@h:6379/0?ssl-ca=" + ca, sslconn.VerifyCA},
		{"rediss://:pw@h:6380/0?ssl-ca=" + ca, sslconn.VerifyIdentity},
		{"rediss://:pw@h:6380/0?skip_verify=true", sslconn.Required},
		{"rediss://:pw@h:6380/0?ssl-mode=VERIFY_CA&ssl-ca=" + ca, sslconn.VerifyCA},
		{"mongodb://h/", sslconn.Preferred},
		{"mongodb://h/?tlsCAFile=" + ca, sslconn.VerifyIdentity},
		{"mongodb://h/?tls=true&tlsAllowInvalidHostnames=true&tlsCAFile=" + ca, sslconn.VerifyCA},
		{"mongodb://h/?tls=false", sslconn.Disabled},
		{"server=h;password=x;ssl_mode=verify-full", sslconn.VerifyIdentity},
		{"sqlserver://sa:pw@h?encrypt=true&TrustServerCertificate=true", sslconn.Required},
		{"sqlserver://sa:pw@h?encrypt=disable", sslconn.Disabled},
		{"sqlserver://sa:pw@h?encrypt=false", sslconn.Preferred},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			e, err := DetectEngine(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := resolve(e, tt.dsn, Options{})
			if err != nil || got != tt.want {
				t.Fatalf("the command resolves %v (%v), want %v", got, err, tt.want)
			}
			// The adapters that expose their Config must agree; the others
			// register the very function they connect with.
			var adapter sslconn.Mode
			switch e {
			case MySQL:
				c, err := mysqlssl.NewConnector(tt.dsn)
				if err != nil {
					t.Fatal(err)
				}
				adapter = c.Config().Mode()
			case MSSQL:
				c, err := mssqlssl.NewConnector(tt.dsn)
				if err != nil {
					t.Fatal(err)
				}
				adapter = c.Config().Mode()
			default:
				return
			}
			if adapter != got {
				t.Fatalf("the adapter resolves %v, the command %v", adapter, got)
			}
		})
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPlaintextLogin: the report says when the requested mode logs in
// without TLS, and what each engine's login gives away there.
func TestPlaintextLogin(t *testing.T) {
	plain := ModeResult{Connected: true}
	tests := []struct {
		name string
		e    Engine
		mode sslconn.Mode
		m    ModeResult
		want string // "" for none
	}{
		{"encrypted", Redis, sslconn.Preferred, ModeResult{Connected: true, Encrypted: true}, ""},
		{"failed", Redis, sslconn.Required, ModeResult{}, ""},
		{"redis PREFERRED", Redis, sslconn.Preferred, plain, "AUTH sends the password itself"},
		{"mysql DISABLED", MySQL, sslconn.Disabled, plain, "get-server-public-key=true"},
		{"mongo", Mongo, sslconn.Preferred, plain, "SCRAM sends no password"},
		{"sql server", MSSQL, sslconn.Preferred, plain, "only obfuscated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plaintextLogin(tt.e, tt.mode, tt.m)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("plaintextLogin = %q; want %q in it", got, tt.want)
			}
			if tt.want != "" && !strings.Contains(got, "ssl-mode=REQUIRED") {
				t.Errorf("%q does not say how to stop it", got)
			}
		})
	}
}
