package fakemongo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sslconn/sslconn/internal/testkit/fakemongo"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/mongossl"
	"github.com/sslconn/sslconn/sslconn"
)

const (
	user     = "app"
	password = "fake-mongo-s3cret"
)

// login connects as user through mongossl in mode and runs a command.
func login(t *testing.T, s *fakemongo.Server, params string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongossl.Connect(ctx, "mongodb://"+user+":"+password+"@"+s.Addr()+"/?authSource=admin&directConnection=true&"+params,
		sslconn.WithRetryBudget(-1), sslconn.WithHandshakeTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	return c.Database("app").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// TestSCRAMObtains: against a MongoDB stand-in that strips TLS (closes the
// ClientHello as a plaintext server does) or presents a certificate from
// another CA, a SCRAM-SHA-256 login gives the attacker the exchange (for
// offline guessing), never the password, in every mode that connects; the
// modes that need TLS or verify give it nothing.
func TestSCRAMObtains(t *testing.T) {
	certs := testenv.GetCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.MITM.Cert, certs.MITM.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []string{"strip", "impostor"} {
		t.Run(attack, func(t *testing.T) {
			for _, mode := range []sslconn.Mode{sslconn.Disabled, sslconn.Preferred, sslconn.Required, sslconn.VerifyCA, sslconn.VerifyIdentity} {
				t.Run(mode.String(), func(t *testing.T) {
					cfg := fakemongo.Config{User: user, Password: password}
					if attack == "impostor" {
						if mode == sslconn.Disabled {
							t.Skip("no TLS to attack: the strip case")
						}
						cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
					}
					s, err := fakemongo.Start(cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					params := "ssl-mode=" + mode.String()
					if mode >= sslconn.VerifyCA {
						params += "&ssl-ca=" + certs.CA
					}
					err = login(t, s, params)
					connects := mode == sslconn.Disabled || mode == sslconn.Preferred || (attack == "impostor" && mode == sslconn.Required)
					if connects != (err == nil) {
						t.Fatalf("connected: %t, want %t: %v", err == nil, connects, err)
					}
					if bytes.Contains(s.Wire(), []byte(password)) {
						t.Errorf("the password crossed to the attacker")
					}
					if got := s.Proved() > 0; got != connects {
						t.Errorf("the attacker holds a SCRAM exchange: %t, want %t", got, connects)
					}
					var want error
					switch {
					case connects:
					case attack == "strip":
						want = sslconn.ErrServerNoTLS
					default:
						want = sslconn.ErrUnknownAuthority
					}
					if want != nil && !errors.Is(err, want) {
						t.Errorf("got %v, want %v", err, want)
					}
				})
			}
		})
	}
}
