package matrix

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// SecretsTarget is one engine as TestSecrets sees it.
type SecretsTarget struct {
	Certs *testenv.Certs
	// Good is a server with TLS optional (S1), Foreign one whose certificate
	// comes from another CA (S4), Password its real password.
	Good, Foreign, Password string
	// DSN builds a DSN for addr with password and the query params.
	DSN func(addr, password, params string) string
	// Malformed is a DSN the adapter cannot parse, holding password.
	Malformed func(password string) string
	// Connect builds a client from dsn with opts, makes one round trip,
	// closes everything, and returns what it built (to be printed).
	Connect func(dsn string, opts ...sslconn.Option) ([]any, error)
	// Extra probes, engine-specific (other DSN syntaxes, driver names).
	Extra map[string]Probe
}

// The secrets RunSecrets plants.
const (
	SecretDSN = "Dsn-Secret-7781"
	SecretJKS = "Jks-Secret-7782"
	SecretKey = "Key-Wrong-7783"
)

// RunSecrets is every adapter's TestSecrets: the DSN password (right and
// wrong), the JKS password and the client key's password (right and wrong)
// never show in errors, logs, printed values or panics, across bad modes,
// malformed DSNs, wrong keystore and key passwords, failed logins,
// foreign certificates, exhausted retries and a good connection.
func RunSecrets(t *testing.T, tg SecretsTarget) {
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := tg.Certs
	with := func(dsn string, extra ...sslconn.Option) Probe {
		return func(log *slog.Logger) ([]any, error) {
			return tg.Connect(dsn, append([]sslconn.Option{sslconn.WithLogger(log)}, extra...)...)
		}
	}
	probes := map[string]Probe{
		"unknown mode":       with(tg.DSN(tg.Good, SecretDSN, "ssl-mode=BOGUS")),
		"malformed DSN":      with(tg.Malformed(SecretDSN)),
		"wrong JKS password": with(tg.DSN(tg.Good, SecretDSN, "ssl-ca="+c.JKS+"&ssl-ca-password="+SecretJKS)),
		"wrong key password": with(tg.DSN(tg.Good, SecretDSN, "ssl-cert="+c.Client.Cert+"&ssl-key="+c.ClientKeyPKCS8+"&ssl-key-password="+SecretKey)),
		"wrong DSN password, encrypted key": with(tg.DSN(tg.Good, SecretDSN, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+c.JKS+
			"&ssl-cert="+c.Client.Cert+"&ssl-key="+c.ClientKeyLegacy+"&ssl-key-password="+testenv.KeyPassword)),
		"foreign certificate":      with(tg.DSN(tg.Foreign, tg.Password, "ssl-mode=VERIFY_CA&ssl-ca="+c.CA)),
		"retries until the budget": with(tg.DSN(testenv.Addr(closed), tg.Password, "ssl-mode=REQUIRED"), sslconn.WithRetryBudget(400*time.Millisecond)),
		"connected":                with(tg.DSN(tg.Good, tg.Password, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+c.CA)),
	}
	for name, p := range tg.Extra {
		probes[name] = p
	}
	ScanSecrets(t, []string{SecretDSN, SecretJKS, SecretKey, testenv.KeyPassword, tg.Password}, probes)
}

// PingSQL is SecretsTarget.Connect for database/sql adapters: it opens a
// *sql.DB on the connector newConnector returns, pings, and closes it.
func PingSQL[C driver.Connector](newConnector func(dsn string, opts ...sslconn.Option) (C, error)) func(string, ...sslconn.Option) ([]any, error) {
	return func(dsn string, opts ...sslconn.Option) ([]any, error) {
		c, err := newConnector(dsn, opts...)
		if err != nil {
			return nil, err
		}
		db := sql.OpenDB(c)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		built := []any{c}
		if cc, ok := any(c).(interface{ Config() *sslconn.Config }); ok {
			built = append(built, cc.Config())
		}
		return built, db.PingContext(ctx)
	}
}
