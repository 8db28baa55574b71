package redisssl

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// certServer is one Redis for the certificates of issue #17, started on
// the first test that needs it; its certificate is swapped per case
// (CONFIG SET tls-cert-file, on the plaintext port). Its OpenSSL runs at
// security level 0 so that it can serve the SHA-1-signed certificate.
var certServer = testenv.NewLazy(func() (*testenv.Server, error) {
	c, err := newCerts()
	if err != nil {
		return nil, err
	}
	return testenv.StartRedis(testenv.TLS{Cert: c.SAN, CA: c.CA, Weak: true})
})

// firstCommand makes a client for u with the default retry budget and
// runs one PING, reporting the error and how many retries the callback
// saw, or dials beyond the first were made (go-redis retrying a dial).
func firstCommand(t *testing.T, u string) (int32, error) {
	t.Helper()
	var retries, dials atomic.Int32
	var dialer net.Dialer
	c, err := NewClient(u,
		sslconn.WithRetryCallback(func(sslconn.RetryEvent) { retries.Add(1) }),
		sslconn.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		}))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// A safety net, not a timing assertion: a retried error would take the
	// whole budget (3 minutes); the counts say whether it was.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.Ping(ctx).Err()
	return retries.Load() + max(dials.Load()-1, 0), err
}

// TestCertificateCases (#17, items 1, 2, 5, 7, 8): each certificate fails
// at once with its sentinel, names the certificate at fault and says
// what fixes it; the same server with the right certificate connects.
func TestCertificateCases(t *testing.T) {
	certs, s := lazyCerts.Get(t), certServer.Get(t)
	for _, tc := range testenv.CertCases(certs) {
		t.Run(tc.Name, func(t *testing.T) {
			if err := s.SetCert(tc.Server); err != nil {
				t.Fatal(err)
			}
			for _, mode := range tc.Modes {
				u := redisURL("localhost", s.TLSPort, "ssl-mode="+mode+"&ssl-ca="+tc.CA)
				var (
					err     error
					retries int32
				)
				says := tc.Says
				if tc.AtConfig {
					_, err = NewClient(u)
				} else {
					retries, err = firstCommand(t, u)
					t.Logf("%s: %v", mode, err)
					says = append(says[:len(says):len(says)], mode, "localhost")
				}
				if err == nil {
					t.Fatalf("%s: no error; want %s", mode, tc.Kind)
				}
				if got := core.KindName(err); got != tc.Kind {
					t.Fatalf("%s: %s, want %s: %v", mode, got, tc.Kind, err)
				}
				if retries != 0 {
					t.Errorf("%s: retried %d times: %v", mode, retries, err)
				}
				if !core.IsPermanent(err) {
					t.Errorf("%s: retryable: %v", mode, err)
				}
				msg := err.Error()
				for _, w := range says {
					if !strings.Contains(msg, w) {
						t.Errorf("%q does not say %q", msg, w)
					}
				}
				if strings.Contains(msg, testenv.RedisPassword) {
					t.Errorf("%q holds the password", msg)
				}
			}
			if tc.RequiredConnects {
				if got, st, _, err := result(t, redisURL("localhost", s.TLSPort, "ssl-mode=REQUIRED")); got != "TLS" {
					t.Fatalf("REQUIRED: %s %+v %v", got, st, err)
				}
			}
		})
	}
	t.Run("the right certificate", func(t *testing.T) {
		if err := s.SetCert(certs.SAN); err != nil {
			t.Fatal(err)
		}
		if got, st, _, err := result(t, redisURL("localhost", s.TLSPort, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA)); got != "TLS" {
			t.Fatalf("%s %+v %v", got, st, err)
		}
	})
}
