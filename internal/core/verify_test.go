package core

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

func TestVerifyHostname(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	ca := makeCert(t, "ca", nil, true, year, nil)
	cnOnly := makeCert(t, "db.example.com", nil, false, year, ca).cert
	wildCN := makeCert(t, "*.example.com", nil, false, year, ca).cert
	ipCN := makeCert(t, "10.1.2.3", nil, false, year, ca).cert
	withSAN := makeCert(t, "db.example.com", []string{"other.example.com"}, false, year, ca).cert
	tests := []struct {
		name string
		cert *x509.Certificate
		host string
		ok   bool
	}{
		{"CN-only matches", cnOnly, "db.example.com", true},
		{"CN-only case-insensitive", cnOnly, "DB.Example.COM", true},
		{"CN-only trailing dot", cnOnly, "db.example.com.", true},
		{"CN-only other host", cnOnly, "evil.example.com", false},
		{"wildcard CN one label", wildCN, "db.example.com", true},
		{"wildcard CN not two labels", wildCN, "a.db.example.com", false},
		{"wildcard CN not the apex", wildCN, "example.com", false},
		{"IP CN", ipCN, "10.1.2.3", true},
		{"IP CN other IP", ipCN, "10.1.2.4", false},
		{"SAN cert never matched on CN", withSAN, "db.example.com", false},
		{"SAN cert matched on SAN", withSAN, "other.example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tlsinfo.VerifyHostname(tt.cert, tt.host)
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyHostname(%q) = %v, want ok=%v", tt.host, err, tt.ok)
			}
			var he x509.HostnameError
			if err != nil && !errors.As(err, &he) {
				t.Fatalf("error is not an x509.HostnameError: %T", err)
			}
		})
	}
}

// TestIntermediates: the certificates after the first are intermediates, so
// a CA bundle holding only the root verifies a leaf the server sends with
// its intermediate (as ApsaraDB's chain is built).
func TestIntermediates(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	root := makeCert(t, "root", nil, true, year, nil)
	inter := makeCert(t, "intermediate", nil, true, year, root)
	leaf := makeCert(t, "leaf", []string{"localhost"}, false, year, inter)
	srv := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert(inter)}}, 0)
	cfg, err := newConfig(WithMode(VerifyIdentity), WithCA([]byte(root.pem())), WithServerName("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// Without the intermediate the chain does not verify.
	srv2 := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert()}}, 0)
	if _, err := cfg.Dial(context.Background(), "tcp", srv2.addr(), nil); !errors.Is(err, ErrUnknownAuthority) {
		t.Fatalf("leaf without intermediate: %v", err)
	}
}

// TestExpiryWarnings: a CA and a server certificate that expire within 30
// days are reported once each, to the callback and the log.
func TestExpiryWarnings(t *testing.T) {
	soon := time.Now().Add(10 * 24 * time.Hour)
	ca := makeCert(t, "ca-expiring", nil, true, soon, nil)
	leaf := makeCert(t, "leaf", []string{"localhost"}, false, soon, ca)
	srv := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert()}}, 0)
	var got []ExpiryWarning
	var logs bytes.Buffer
	cfg, err := newConfig(WithMode(VerifyIdentity), WithCA([]byte(ca.pem())), WithServerName("localhost"),
		WithExpiryWarning(0, func(w ExpiryWarning) { got = append(got, w) }),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	if len(got) != 2 || got[0].Source != "ca" || got[1].Source != "server" || got[1].Subject != "CN=leaf" {
		t.Fatalf("warnings %+v, want the CA then the server leaf, once each", got)
	}
	if d := got[1].Left; d < 9*24*time.Hour || d > 11*24*time.Hour {
		t.Errorf("Left = %v", d)
	}
	if strings.Count(logs.String(), "expires soon") != 2 {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestRequiredWithCAWarns: an explicit REQUIRED never verifies, even with a
// CA, and says that VERIFY_CA would use it.
func TestRequiredWithCAWarns(t *testing.T) {
	var logs bytes.Buffer
	ca := makeCert(t, "ca", nil, true, time.Now().Add(time.Hour*24*365), nil)
	other := makeCert(t, "other", nil, true, time.Now().Add(time.Hour*24*365), nil)
	leaf := makeCert(t, "leaf", []string{"localhost"}, false, time.Now().Add(time.Hour*24*365), other)
	srv := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{leaf.tlsCert()}}, 0)
	cfg, err := newConfig(WithMode(Required), WithCA([]byte(ca.pem())), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.Dial(context.Background(), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatalf("REQUIRED verified the certificate: %v", err)
	}
	conn.Close()
	if !strings.Contains(logs.String(), "VERIFY_CA") {
		t.Fatalf("no warning: %q", logs.String())
	}
}

func TestErrorMessage(t *testing.T) {
	inner := x509.UnknownAuthorityError{}
	err := Classify(&tls.CertificateVerificationError{Err: inner}, VerifyCA, "db.example.com:3306")
	var ua x509.UnknownAuthorityError
	if !errors.Is(err, ErrUnknownAuthority) || !errors.As(err, &ua) {
		t.Fatalf("Classify lost the chain: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"VERIFY_CA", "db.example.com:3306", "ssl-ca"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if Classify(errors.New("other"), VerifyCA, "h") == nil || IsPermanent(errors.New("other")) {
		t.Error("an unknown error must pass through and not be permanent")
	}
}

// TestIsPermanent: what retrying cannot fix stops Retry at once.
func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{"host not found", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "rm-typo", IsNotFound: true}}, true},
		{"DNS timeout", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "rm-1", IsTimeout: true}}, false},
		{"unknown authority", NewError(ErrUnknownAuthority, VerifyCA, "h", "", nil), true},
		{"handshake timeout", NewError(ErrHandshakeTimeout, Required, "h", "", os.ErrDeadlineExceeded), false},
		{"marked", Permanent(errors.New("bad password")), true},
		// Retry stops on the caller's own context; the error alone says
		// nothing (a connect timeout also matches context.DeadlineExceeded).
		{"an ended context, by itself", context.Canceled, false},
		{"connect timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %t", tt.err, got)
			}
		})
	}
}

// TestVerifyChain: a chain judged outside a handshake gets the handshake's
// verdict, mode by mode.
func TestVerifyChain(t *testing.T) {
	c := testenv.GetCerts(t)
	leaf := func(p testenv.Pair) []*x509.Certificate {
		block, _ := pem.Decode(readFile(t, p.Cert))
		if block == nil {
			t.Fatal("no PEM in " + p.Cert)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{cert}
	}
	cfg, err := newConfig(WithCAFile(c.CA))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		mode  Mode
		host  string
		chain []*x509.Certificate
		want  error
	}{
		{"SAN, identity", VerifyIdentity, "localhost:3306", leaf(c.SAN), nil},
		{"SAN, by IP", VerifyIdentity, "127.0.0.1:3306", leaf(c.SAN), nil},
		{"CN only", VerifyIdentity, "localhost", leaf(c.CNOnly), nil},
		{"other host, CA", VerifyCA, "localhost", leaf(c.OtherHost), nil},
		{"other host, identity", VerifyIdentity, "localhost", leaf(c.OtherHost), ErrHostnameMismatch},
		{"other CA", VerifyCA, "localhost", leaf(c.MITM), ErrUnknownAuthority},
		{"expired", VerifyCA, "localhost", leaf(c.Expired), ErrCertExpired},
		{"REQUIRED verifies nothing", Required, "localhost", leaf(c.MITM), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cfg.VerifyChain(tt.mode, tt.host, tt.chain)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestWriteError: a write into a closed connection is known unsent only
// when every earlier write was answered; after an unanswered write (the
// first part of a pipeline) its outcome is unknown, and no retry replays it.
func TestWriteError(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	p := NewPeerCheck(a)
	if err := p.WriteError(a, io.EOF); !errors.Is(err, ErrNotSent) || errors.Is(err, sslconn.ErrOutcomeUnknown) {
		t.Fatalf("nothing written: %v", err)
	}
	p.Sent(10)
	if err := p.WriteError(a, io.EOF); !errors.Is(err, sslconn.ErrOutcomeUnknown) || errors.Is(err, ErrNotSent) {
		t.Fatalf("after an unanswered write: %v", err)
	}
	p.Received(5)
	if err := p.WriteError(a, io.EOF); !errors.Is(err, ErrNotSent) {
		t.Fatalf("after the answer: %v", err)
	}
}
