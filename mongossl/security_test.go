package mongossl

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sslconn/sslconn/internal/matrix"
	"github.com/sslconn/sslconn/internal/mitm"
	"github.com/sslconn/sslconn/internal/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func target() matrix.Target {
	return matrix.Target{
		Engine:      mitm.Mongo,
		Upstream:    testenv.Addr(servers[1].TLSPort),
		UpstreamTLS: true,
		Certs:       certs,
		Connect: func(ctx context.Context, addr string, mode sslconn.Mode, marker string, opts ...sslconn.Option) error {
			c, err := Connect(ctx, "mongodb://"+addr+"/?ssl-mode="+mode.String()+"&ssl-ca="+certs.CA, opts...)
			if err != nil {
				return err
			}
			defer c.Disconnect(context.Background())
			_, err = c.Database("sslconn_test").Collection("attacks").InsertOne(ctx, bson.D{{Key: "m", Value: marker}})
			return err
		},
	}
}

// TestAttacks: a man in the middle against every mode (see matrix.RunAttacks).
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target()) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target()) }

// TestNoLeaks: concurrent clients and operations, then Disconnect, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	matrix.RunNoLeaks(t, target(), 4, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
		c, err := Connect(ctx, "mongodb://"+addr+"/?ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA)
		if err != nil {
			return nil, nil, err
		}
		coll := c.Database("sslconn_test").Collection("leaks")
		return func(ctx context.Context) error {
				_, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
				return err
			}, func() error {
				return c.Disconnect(context.Background())
			}, nil
	})
}

// TestSecrets: the URI password, the JKS password and the client key's
// password never show in errors, logs, printed values or panics.
func TestSecrets(t *testing.T) {
	const (
		uriPW = "Uri-Secret-7781"
		jksPW = "Jks-Secret-7782"
		keyPW = "Key-Wrong-7783"
	)
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s1, s4 := testenv.Addr(servers[1].TLSPort), testenv.Addr(servers[4].TLSPort)
	at := func(addr, pw, params string) string { return "mongodb://app:" + pw + "@" + addr + "/?" + params }
	connect := func(uri string, opts ...sslconn.Option) ([]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := Connect(ctx, uri, opts...)
		if err != nil {
			return nil, err
		}
		defer c.Disconnect(context.Background())
		return []any{c}, c.Ping(ctx, nil)
	}
	probes := map[string]matrix.Probe{
		"unknown mode": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, uriPW, "ssl-mode=BOGUS"), sslconn.WithLogger(log))
		},
		"malformed URI": func(log *slog.Logger) ([]any, error) {
			return connect("mongodb://app:"+uriPW+"@["+s1+"/?x", sslconn.WithLogger(log))
		},
		"wrong JKS password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, uriPW, "ssl-ca="+certs.JKS+"&ssl-ca-password="+jksPW), sslconn.WithLogger(log))
		},
		"wrong key password": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, uriPW, "tlsCertificateFile="+certs.Client.Cert+"&tlsPrivateKeyFile="+certs.ClientKeyPKCS8+"&tlsCertificateKeyFilePassword="+keyPW), sslconn.WithLogger(log))
		},
		"password, encrypted key": func(log *slog.Logger) ([]any, error) {
			return connect(at(s1, uriPW, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.JKS+"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyLegacy+"&ssl-key-password="+testenv.KeyPassword), sslconn.WithLogger(log))
		},
		"foreign certificate": func(log *slog.Logger) ([]any, error) {
			return connect(at(s4, uriPW, "ssl-mode=VERIFY_CA&ssl-ca="+certs.CA), sslconn.WithLogger(log))
		},
		"retries until the budget": func(log *slog.Logger) ([]any, error) {
			return connect(at(testenv.Addr(closed), uriPW, "ssl-mode=REQUIRED"), sslconn.WithLogger(log), sslconn.WithRetryBudget(400*time.Millisecond))
		},
	}
	matrix.ScanSecrets(t, []string{uriPW, jksPW, keyPW, testenv.KeyPassword}, probes)
}
