package mongossl

import (
	"context"
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

func target(t *testing.T) matrix.Target {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	return matrix.Target{
		Engine:      mitm.Mongo,
		Upstream:    testenv.Addr(servers[1].TLSPort),
		UpstreamTLS: true,
		Certs:       certs,
		// No Password: FerretDB runs without authentication here, so the
		// cells check the marker alone.
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
func TestAttacks(t *testing.T) { matrix.RunAttacks(t, target(t)) }

// TestHostileServer: a server that stalls or floods the handshake costs a
// bounded time and memory (see matrix.RunHostile).
func TestHostileServer(t *testing.T) { matrix.RunHostile(t, target(t)) }

// TestNoLeaks: concurrent clients and operations, then Disconnect, leave no
// goroutine and no open connection behind.
func TestNoLeaks(t *testing.T) {
	tg := target(t)
	certs := tg.Certs
	matrix.RunNoLeaks(t, tg, 4, func(ctx context.Context, addr string) (func(context.Context) error, func() error, error) {
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

// TestSecrets: no password in errors, logs, printed values or panics (see
// matrix.RunSecrets), through Connect, ConnectOptions (the password in the
// driver's Auth) and ClientOptions. FerretDB runs without authentication
// here, so the password is only ever wrong.
func TestSecrets(t *testing.T) {
	env := scenarios.Get(t)
	certs, servers := env.Certs, env.Servers
	uri := func(addr, pw, params string) string {
		if pw == "" {
			return "mongodb://" + addr + "/?" + params
		}
		return "mongodb://app:" + pw + "@" + addr + "/?" + params
	}
	connect := func(u string, opts ...sslconn.Option) ([]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := Connect(ctx, u, opts...)
		if err != nil {
			return nil, err
		}
		defer c.Disconnect(context.Background())
		return []any{c}, c.Ping(ctx, nil)
	}
	connectOptions := func(co *options.ClientOptions, opts ...sslconn.Option) ([]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := ConnectOptions(ctx, co, opts...)
		if err != nil {
			return nil, err
		}
		defer c.Disconnect(context.Background())
		return []any{c}, c.Ping(ctx, nil)
	}
	// withAuth is the driver's options for addr with the password in Auth.
	withAuth := func(addr string, tc *tls.Config) *options.ClientOptions {
		return options.Client().SetHosts([]string{addr}).SetTLSConfig(tc).
			SetAuth(options.Credential{Username: "app", Password: matrix.SecretDSN})
	}
	good := testenv.Addr(servers[1].TLSPort)
	matrix.RunSecrets(t, matrix.SecretsTarget{
		Certs: certs, Good: good, Foreign: testenv.Addr(servers[4].TLSPort),
		DSN:       uri,
		Malformed: func(pw string) string { return "mongodb://app:" + pw + "@[127.0.0.1:1/?x" },
		Connect:   connect,
		Extra: map[string]matrix.Probe{
			"wrong key password, driver's name": func(log *slog.Logger) ([]any, error) {
				return connect(uri(good, matrix.SecretDSN, "tlsCertificateFile="+certs.Client.Cert+"&tlsPrivateKeyFile="+certs.ClientKeyPKCS8+
					"&tlsCertificateKeyFilePassword="+matrix.SecretKey), sslconn.WithLogger(log))
			},
			"ConnectOptions, wrong password": func(log *slog.Logger) ([]any, error) {
				return connectOptions(withAuth(good, nil), sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithLogger(log))
			},
			"ConnectOptions, foreign certificate": func(log *slog.Logger) ([]any, error) {
				return connectOptions(withAuth(testenv.Addr(servers[4].TLSPort), &tls.Config{}), sslconn.WithCAFile(certs.CA), sslconn.WithLogger(log))
			},
			"ConnectOptions, conflict": func(log *slog.Logger) ([]any, error) {
				return connectOptions(withAuth(good, &tls.Config{InsecureSkipVerify: true}), sslconn.WithMode(sslconn.VerifyCA), sslconn.WithLogger(log))
			},
			"ConnectOptions, invalid options": func(log *slog.Logger) ([]any, error) {
				return connectOptions(options.Client().ApplyURI("mongodb://app:"+matrix.SecretDSN+"@[127.0.0.1:1/?x"), sslconn.WithLogger(log))
			},
			"ConnectOptions, wrong key password": func(log *slog.Logger) ([]any, error) {
				return connectOptions(withAuth(good, &tls.Config{}), sslconn.WithCAFile(certs.CA), sslconn.WithLogger(log),
					sslconn.WithClientCertFiles(certs.Client.Cert, certs.ClientKeyPKCS8), sslconn.WithClientKeyPassword(matrix.SecretKey))
			},
			"ClientOptions and its dialer, printed": func(log *slog.Logger) ([]any, error) {
				co, err := ClientOptions(uri(good, matrix.SecretDSN, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA+
					"&ssl-cert="+certs.Client.Cert+"&ssl-key="+certs.ClientKeyLegacy+"&ssl-key-password="+testenv.KeyPassword), sslconn.WithLogger(log))
				if err != nil {
					return nil, err
				}
				// The dialer, which keeps the URI's passwords, prints none
				// (the driver's own ClientOptions, printed with %s, shows
				// its Auth: that is the driver's type).
				return []any{co.Dialer}, nil
			},
		},
	})
}
