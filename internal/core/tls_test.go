package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// testServer serves one scenario on a loopback port: TLS with a certificate,
// or plaintext that answers, closes, or stays silent on a ClientHello.
type testServer struct {
	l       net.Listener
	mu      sync.Mutex
	sni     []string
	resumed []bool
}

type plainKind int

const (
	plainAnswers plainKind = iota + 1 // like Redis when the hello holds a newline
	plainCloses                       // like FerretDB
	plainSilent                       // like Redis otherwise
)

func startTLSServer(t *testing.T, conf *tls.Config, plain plainKind) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{l: l}
	t.Cleanup(func() { l.Close() })
	if conf != nil {
		conf = conf.Clone()
		conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, h.ServerName)
			s.mu.Unlock()
			return nil, nil
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if conf == nil {
					buf := make([]byte, 1024)
					switch plain {
					case plainAnswers:
						c.Read(buf)
						io.WriteString(c, "-ERR unknown command\r\n")
						c.Read(buf)
					case plainCloses:
						c.Read(buf)
					case plainSilent:
						io.Copy(io.Discard, c)
					}
					return
				}
				tc := tls.Server(c, conf)
				if err := tc.Handshake(); err != nil {
					return
				}
				s.mu.Lock()
				s.resumed = append(s.resumed, tc.ConnectionState().DidResume)
				s.mu.Unlock()
				io.WriteString(tc, "hello")
				io.Copy(io.Discard, tc)
			}()
		}
	}()
	return s
}

func (s *testServer) addr() string { return s.l.Addr().String() }

func serverConf(t *testing.T, p testenv.Pair) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// outcome dials with the config and reports "plain", "TLS" or the sentinel.
func outcome(t *testing.T, c *Config, addr string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, "tcp", addr, nil)
	if err != nil {
		for _, k := range []error{ErrServerNoTLS, ErrUnknownAuthority, ErrHostnameMismatch, ErrCertExpired, ErrTLSVersion, ErrClientCertRequired} {
			if errors.Is(err, k) {
				return k.Error(), err
			}
		}
		return "unclassified", err
	}
	defer conn.Close()
	if conn.(*Conn).Status().Encrypted {
		return "TLS", nil
	}
	return "plain", nil
}

// TestModeMatrix runs every mode against every TLS-level scenario of the
// contract (S2 needs a server that also speaks plaintext: the adapters' tests
// cover it) and checks each cell, including the error kind.
func TestModeMatrix(t *testing.T) {
	c := testenv.GetCerts(t)
	legacy := serverConf(t, c.SAN)
	legacy.MinVersion, legacy.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	const (
		plain = "plain"
		TLS   = "TLS"
	)
	noTLS, unknown, mismatch, expired, version := ErrServerNoTLS.Error(), ErrUnknownAuthority.Error(),
		ErrHostnameMismatch.Error(), ErrCertExpired.Error(), ErrTLSVersion.Error()
	scenarios := []struct {
		name  string
		conf  *tls.Config
		plain plainKind
		want  map[Mode]string
	}{
		{"S0-answers", nil, plainAnswers, map[Mode]string{Disabled: plain, Preferred: plain, Required: noTLS, VerifyCA: noTLS, VerifyIdentity: noTLS}},
		{"S0-closes", nil, plainCloses, map[Mode]string{Disabled: plain, Preferred: plain, Required: noTLS, VerifyCA: noTLS, VerifyIdentity: noTLS}},
		{"S0-silent", nil, plainSilent, map[Mode]string{Disabled: plain, Preferred: plain, Required: noTLS, VerifyCA: noTLS, VerifyIdentity: noTLS}},
		{"S1-SAN", serverConf(t, c.SAN), 0, map[Mode]string{Disabled: plain, Preferred: TLS, Required: TLS, VerifyCA: TLS, VerifyIdentity: TLS}},
		{"S3-other-host", serverConf(t, c.OtherHost), 0, map[Mode]string{Disabled: plain, Preferred: TLS, Required: TLS, VerifyCA: TLS, VerifyIdentity: mismatch}},
		{"S4-other-CA", serverConf(t, c.MITM), 0, map[Mode]string{Disabled: plain, Preferred: TLS, Required: TLS, VerifyCA: unknown, VerifyIdentity: unknown}},
		{"S5-CN-only", serverConf(t, c.CNOnly), 0, map[Mode]string{Disabled: plain, Preferred: TLS, Required: TLS, VerifyCA: TLS, VerifyIdentity: TLS}},
		{"S6-expired", serverConf(t, c.Expired), 0, map[Mode]string{Disabled: plain, Preferred: TLS, Required: TLS, VerifyCA: expired, VerifyIdentity: expired}},
		{"S7-TLS1.1", legacy, 0, map[Mode]string{Disabled: plain, Preferred: version, Required: version, VerifyCA: version, VerifyIdentity: version}},
	}
	for _, sc := range scenarios {
		srv := startTLSServer(t, sc.conf, sc.plain)
		for _, mode := range Modes {
			t.Run(sc.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				cfg, err := newConfig(WithMode(mode), WithCAFile(c.CA), WithHandshakeTimeout(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				// Dial "localhost:port" so the name checked is localhost.
				addr := strings.Replace(srv.addr(), "127.0.0.1", "localhost", 1)
				got, err := outcome(t, cfg, addr)
				if got != sc.want[mode] {
					t.Fatalf("got %s (%v), want %s", got, err, sc.want[mode])
				}
				if err != nil {
					msg := err.Error()
					if !strings.Contains(msg, mode.String()) || !strings.Contains(msg, "localhost") {
						t.Errorf("error %q does not name the mode and host", msg)
					}
					var e *Error
					if !errors.As(err, &e) || e.Option == "" || !strings.Contains(msg, e.Option) {
						t.Errorf("error %q does not name an option", msg)
					}
				}
			})
		}
	}
}

// TestLegacyTLSByOption: TLS 1.0/1.1 servers work once tls-version allows them.
func TestLegacyTLSByOption(t *testing.T) {
	c := testenv.GetCerts(t)
	legacy := serverConf(t, c.SAN)
	legacy.MinVersion, legacy.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	srv := startTLSServer(t, legacy, 0)
	lo, hi, err := tlsinfo.ParseVersionList("TLSv1,TLSv1.1,TLSv1.2")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(WithMode(VerifyIdentity), WithCAFile(c.CA), WithTLSVersions(lo, hi))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if st := conn.(*Conn).Status(); st.Version != "TLSv1.1" {
		t.Fatalf("status %v, want TLSv1.1", st)
	}
}

// TestServerNameAndSNI: an endpoint reached by IP verifies against the
// override, sends no SNI for an IP literal, and the override's name otherwise.
func TestServerNameAndSNI(t *testing.T) {
	c := testenv.GetCerts(t)
	srv := startTLSServer(t, serverConf(t, c.OtherHost), 0)
	cfg, err := newConfig(WithMode(VerifyIdentity), WithCAFile(c.CA))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil); !errors.Is(err, ErrHostnameMismatch) {
		t.Fatalf("by IP without override: %v", err)
	}
	cfg, err = newConfig(WithMode(VerifyIdentity), WithCAFile(c.CA), WithServerName("other.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sni[0] != "" || srv.sni[len(srv.sni)-1] != "other.example.com" {
		t.Fatalf("SNI seen %q, want none for the IP, then other.example.com", srv.sni)
	}
}

// TestCAReloadAndResumption: a replaced CA file takes effect on the next
// connection, and VerifyConnection runs on resumed sessions too.
func TestCAReloadAndResumption(t *testing.T) {
	c := testenv.GetCerts(t)
	srv := startTLSServer(t, serverConf(t, c.SAN), 0)
	caFile := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(caFile, readFile(t, c.CA), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(WithMode(VerifyIdentity), WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	dial := func() error {
		conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
		if err == nil {
			// Read so the TLS 1.3 ticket arrives before the close.
			buf := make([]byte, 5)
			io.ReadFull(conn, buf)
			conn.Close()
		}
		return err
	}
	for i := range 2 {
		if err := dial(); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	srv.mu.Lock()
	resumed := srv.resumed[len(srv.resumed)-1]
	srv.mu.Unlock()
	if !resumed {
		t.Fatalf("second connection did not resume the session")
	}
	// Rotate to a CA that did not sign the server: the resumed session must fail.
	if err := os.WriteFile(caFile, readFile(t, c.OtherCA), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(caFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if err := dial(); !errors.Is(err, ErrUnknownAuthority) {
		t.Fatalf("after rotation: %v, want ErrUnknownAuthority", err)
	}
	// A half-written file keeps the last good CA rather than fail everything.
	if err := os.WriteFile(caFile, []byte("-----BEGIN CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(caFile, time.Now().Add(2*time.Minute), time.Now().Add(2*time.Minute))
	if err := dial(); !errors.Is(err, ErrUnknownAuthority) {
		t.Fatalf("after a broken rotation: %v, want the previous CA's verdict", err)
	}
}

// TestClientCertificate: a server that requires client certificates gives
// ErrClientCertRequired without one and accepts the configured one.
func TestClientCertificate(t *testing.T) {
	c := testenv.GetCerts(t)
	conf := serverConf(t, c.SAN)
	ca, _ := sslconn.ReadCAChain(c.CA, "")
	conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, certPool(ca)
	for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tlsinfo.VersionName(max), func(t *testing.T) {
			srv := startTLSServer(t, conf, 0)
			cfg, _ := newConfig(WithMode(VerifyIdentity), WithCAFile(c.CA), WithTLSVersions(0, max))
			conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
			if err == nil {
				// TLS 1.3 reports the server's refusal on the first read,
				// which Conn classifies.
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if !errors.Is(err, ErrClientCertRequired) {
				t.Fatalf("without a client cert: %v", err)
			}
			cfg, err = newConfig(WithMode(VerifyIdentity), WithCAFile(c.CA), WithClientCertFiles(c.Client.Cert, c.Client.Key), WithTLSVersions(0, max))
			if err != nil {
				t.Fatal(err)
			}
			conn, err = cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(conn, buf); err != nil {
				t.Fatalf("read with client cert: %v", err)
			}
			conn.Close()
		})
	}
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestWithDialer: every connection's TCP connection comes from the
// configured dialer (a bastion, a SOCKS proxy), TLS on top, in every mode.
func TestWithDialer(t *testing.T) {
	c := testenv.GetCerts(t)
	srv := startTLSServer(t, serverConf(t, c.SAN), 0)
	var dials atomic.Int32
	via := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	for _, m := range []Mode{Required, VerifyIdentity} {
		cfg, err := newConfig(WithMode(m), WithCAFile(c.CA), WithServerName("localhost"), sslconn.WithDialer(via))
		if err != nil {
			t.Fatal(err)
		}
		before := dials.Load()
		conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if st := conn.(*Conn).Status(); !st.Encrypted {
			t.Fatalf("%s: plaintext", m)
		}
		conn.Close()
		if dials.Load() != before+1 {
			t.Fatalf("%s: the dialer was used %d times for one connection", m, dials.Load()-before)
		}
	}
}

// TestStalledServerNotTakenForPlaintext: a server that completed TLS
// connections for this Config and is then slow to answer a ClientHello
// (frozen, or a fleet's handshakes queued after a restart) is waited for,
// not reported as a server without TLS after the first-byte wait.
func TestStalledServerNotTakenForPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("waits past the first-byte wait (3 s)")
	}
	c := testenv.GetCerts(t)
	conf := serverConf(t, c.SAN)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var n atomic.Int32
	go func() {
		for {
			raw, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				if n.Add(1) > 1 {
					time.Sleep(firstByteTimeout + time.Second) // stalled
				}
				tc := tls.Server(raw, conf)
				if tc.Handshake() == nil {
					io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	cfg, err := newConfig(WithMode(Required))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		conn, err := cfg.Dial(ctx, "tcp", l.Addr().String(), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		conn.Close()
	}
}
