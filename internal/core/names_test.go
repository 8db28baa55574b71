package core

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// cmdFlags are the sslconn command's flags, as internal/check gives them.
var cmdFlags = map[isettings.Knob]string{isettings.CA: "--ca", isettings.CAPassword: "--ca-password", isettings.ServerName: "--server-name"}

// TestHintsNameSettingsAsSet (#29): an error names the setting that fixes
// it as the user made it: a DSN parameter, an option function or a
// command flag, never another form.
func TestHintsNameSettingsAsSet(t *testing.T) {
	c := testenv.GetCerts(t)
	const pw = "Wrong-pw-29"
	tests := []struct {
		name      string
		spec      Spec
		opts      []Option
		says, not string
	}{
		{"DSN parameter", Spec{Params: url.Values{"ssl-ca": {c.JKS}, "ssl-ca-password": {pw}}}, nil, "set ssl-ca-password to", "WithCAPassword"},
		{"option", Spec{}, []Option{sslconn.WithCAFile(c.JKS), sslconn.WithCAPassword(pw)}, "set sslconn.WithCAPassword to", "ssl-ca-password"},
		{"flag", Spec{}, []Option{WithFlags(cmdFlags), sslconn.WithCAFile(c.JKS), sslconn.WithCAPassword(pw)}, "set --ca-password to", "ssl-ca-password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.spec, tt.opts...)
			if !errors.Is(err, sslconn.ErrBadCA) || !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), tt.not) {
				t.Fatalf("err = %v; want it to say %q, not %q", err, tt.says, tt.not)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("password in %q", err)
			}
		})
	}
}

// TestServerNameSetSaysSo (#29): a server name the user set that the
// certificate does not hold is named as the setting that failed.
func TestServerNameSetSaysSo(t *testing.T) {
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Root CA"}, IsCA: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	chain := []*x509.Certificate{issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "db"}, DNSNames: []string{"localhost", "db.internal"}}, ca).cert}
	tests := []struct {
		name string
		spec Spec
		opts []Option
		says string
	}{
		{"DSN parameter", Spec{Params: url.Values{"ssl-server-name": {"db.example.com"}}}, nil,
			"ssl-server-name=db.example.com does not match the certificate (CN=db) (names: localhost, db.internal)"},
		{"option", Spec{}, []Option{sslconn.WithServerName("db.example.com")},
			`sslconn.WithServerName("db.example.com") does not match the certificate (CN=db) (names: localhost, db.internal)`},
		{"flag", Spec{}, []Option{WithFlags(cmdFlags), sslconn.WithServerName("db.example.com")},
			"--server-name=db.example.com does not match the certificate (CN=db) (names: localhost, db.internal)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(tt.spec, append(tt.opts, sslconn.WithCA([]byte(ca.pem())))...)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.VerifyChain(sslconn.VerifyIdentity, "10.0.0.7:3306", chain)
			if !errors.Is(err, sslconn.ErrHostnameMismatch) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v; want it to say %q", err, tt.says)
			}
		})
	}
}

// TestUnavailableNamesBudgetAsSet (#29): a refused address names the
// retry budget as an option for library users, and not at all under the
// command, which has no flag for it.
func TestUnavailableNamesBudgetAsSet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a closed port: refused at once
	for _, tt := range []struct {
		name string
		opts []Option
		says bool
	}{
		{"library", nil, true},
		{"command", []Option{WithFlags(cmdFlags)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(Spec{}, append(tt.opts, sslconn.WithRetryBudget(-1), sslconn.WithMode(sslconn.Disabled))...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.Dial(context.Background(), "tcp", addr, nil)
			if !errors.Is(err, sslconn.ErrUnavailable) || strings.Contains(err.Error(), "sslconn.WithRetryBudget") != tt.says {
				t.Fatalf("err = %v; naming sslconn.WithRetryBudget: want %t", err, tt.says)
			}
		})
	}
}

// TestSettingForms: the one renderer of settings, in each form.
func TestSettingForms(t *testing.T) {
	var param, option, flag isettings.Sources
	param.Via = isettings.Param
	param.Set(isettings.Mode)
	option.Set(isettings.Mode)
	flag.Flags = map[isettings.Knob]string{isettings.HandshakeTimeout: "--timeout"}
	for _, tt := range []struct{ got, want string }{
		{param.Setting(isettings.Mode, "VERIFY_CA"), "ssl-mode=VERIFY_CA"},
		{option.Setting(isettings.Mode, "VERIFY_CA"), "sslconn.WithMode(sslconn.VerifyCA)"},
		{option.Setting(isettings.Mode, "VERIFY_IDENTITY"), "sslconn.WithMode(sslconn.VerifyIdentity)"},
		{option.Name(isettings.CA), "ssl-ca"}, // not set: a DSN parameter
		{option.Name(isettings.RetryBudget), "sslconn.WithRetryBudget"},
		{flag.Name(isettings.HandshakeTimeout), "--timeout"},
		{flag.Name(isettings.Mode), "ssl-mode"},
		{flag.Name(isettings.RetryBudget), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// uncomparable is an error type == panics on, as go-mssqldb's mssql.Error.
type uncomparable struct{ parts []string }

func (u uncomparable) Error() string { return strings.Join(u.parts, " ") }

// TestExplainUncomparable: a driver's error of an uncomparable type passes
// Explain unchanged, bare or marked permanent.
func TestExplainUncomparable(t *testing.T) {
	cfg, err := Resolve(Spec{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []error{uncomparable{[]string{"login", "failed"}}, Permanent(uncomparable{[]string{"login", "failed"}})} {
		if out := cfg.Explain(in); out.Error() != "login failed" {
			t.Errorf("got %v", out)
		}
	}
}
