package sslconn

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"software.sslmate.com/src/go-pkcs12"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testenv.Cleanup() != nil && code == 0 {
		code = 1 // a server that would not stop fails the run
	}
	os.Exit(code)
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseCAChainFormats reads every format the console's CA download comes
// in, made by the real tools (openssl, keytool, zip), and finds root-ca in each.
func TestParseCAChainFormats(t *testing.T) {
	c := testenv.GetCerts(t)
	ca, err := ParseCAChain(readFile(t, c.CA), "")
	if err != nil {
		t.Fatal(err)
	}
	p12, err := pkcs12.Modern.EncodeTrustStore(ca, "apsaradb")
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(append(readFile(t, c.CA), "\n"...), readFile(t, c.OtherCA)...)
	tests := []struct {
		name     string
		data     []byte
		password string
		want     int
	}{
		{"PEM", readFile(t, c.CA), "", 1},
		{"PEM bundle", bundle, "", 2},
		{"PEM with text before", append([]byte("subject=CN = root-ca\nissuer=...\n"), readFile(t, c.CA)...), "", 1},
		{"DER", readFile(t, c.CADER), "", 1},
		{"P7B PEM", readFile(t, c.P7B), "", 1},
		{"P7B DER", readFile(t, c.P7BDER), "", 1},
		{"JKS default password", readFile(t, c.JKS), "", 1},
		{"JKS explicit password", readFile(t, c.JKS), "apsaradb", 1},
		{"PKCS12 trust store", p12, "", 1},
		{"zip", readFile(t, c.Zip), "", 1},
		{"zip with wrong JKS password still reads the PEM", readFile(t, c.Zip), "not-the-password", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseCAChain(tt.data, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != tt.want {
				t.Fatalf("%d certificates, want %d", len(certs), tt.want)
			}
			if certs[0].Subject.CommonName != "root-ca" {
				t.Fatalf("first certificate is %q, want root-ca", certs[0].Subject.CommonName)
			}
		})
	}
}

func TestReadCAChain(t *testing.T) {
	c := testenv.GetCerts(t)
	for _, f := range []string{c.CA, c.CADER, c.P7B, c.P7BDER, c.JKS, c.Zip} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := ReadCAChain(f, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
	_, err := ReadCAChain(filepath.Join(c.Dir, "missing.pem"), "")
	if !errors.Is(err, ErrBadCA) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "ssl-ca") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestParseCAChainBadInput: each bad input is a clear ErrBadCA naming the
// option to fix, and a wrong password never shows up in the message.
func TestParseCAChainBadInput(t *testing.T) {
	c := testenv.GetCerts(t)
	pemData := readFile(t, c.CA)
	der := readFile(t, c.CADER)
	jks := readFile(t, c.JKS)
	var onlyJKS bytes.Buffer
	zw := zip.NewWriter(&onlyJKS)
	w, _ := zw.Create("ApsaraDB-CA-Chain.jks")
	w.Write(jks)
	zw.Close()
	var emptyZip bytes.Buffer
	zip.NewWriter(&emptyZip).Close()

	const secret = "Wrong-Secret-42"
	tests := []struct {
		name, password, wantText, wantOption string
		data                                 []byte
	}{
		{name: "empty", data: nil, wantText: "empty"},
		{name: "blank", data: []byte(" \n\t"), wantText: "empty"},
		{name: "truncated PEM", data: pemData[:len(pemData)/2], wantText: "truncated"},
		{name: "PEM with only a key", data: readFile(t, c.SAN.Key), wantText: "no certificate"},
		{name: "truncated DER", data: der[:len(der)/2], wantText: "truncated or corrupt"},
		{name: "truncated JKS", data: jks[:len(jks)/2], wantText: "truncated or corrupt"},
		{name: "wrong JKS password", data: jks, password: secret, wantText: "wrong keystore password", wantOption: "ssl-ca-password"},
		{name: "zip with only a JKS and the wrong password", data: onlyJKS.Bytes(), password: secret, wantText: "wrong keystore password", wantOption: "ssl-ca-password"},
		{name: "empty zip", data: emptyZip.Bytes(), wantText: "no certificate"},
		{name: "text", data: []byte("hello, this is not a certificate"), wantText: "not a PEM, DER"},
		{name: "truncated zip", data: readFile(t, c.Zip)[:100], wantText: "zip"},
		{name: "JKS claiming a 4 GiB certificate", data: hostileJKS, wantText: "truncated or corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCAChain(tt.data, tt.password)
			if !errors.Is(err, ErrBadCA) {
				t.Fatalf("err = %v, want ErrBadCA", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantText) {
				t.Errorf("%q does not say %q", msg, tt.wantText)
			}
			opt := tt.wantOption
			if opt == "" {
				opt = "ssl-ca"
			}
			if !strings.Contains(msg, opt) {
				t.Errorf("%q does not name %s", msg, opt)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("password leaked: %q", msg)
			}
			var e *Error
			if !errors.As(err, &e) || e.Option != opt {
				t.Errorf("Option = %v, want %s", e, opt)
			}
		})
	}
}

// hostileJKS is a keystore whose certificate length field claims ~4 GiB:
// it must be refused before anything allocates that much.
var hostileJKS = []byte{
	0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 1, // magic, version 2, one entry
	0, 0, 0, 2, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, // trusted cert, alias "a", timestamp
	0, 5, 'X', '.', '5', '0', '9', 0xFF, 0xFF, 0xFF, 0xF0, // type X.509, length
}

func FuzzParseCAChain(f *testing.F) {
	c := testenv.GetCerts(f)
	// Every format the console hands out, made fresh by gencerts.sh.
	for _, name := range []string{c.CA, c.CADER, c.P7B, c.P7BDER, c.JKS, c.Zip} {
		f.Add(readFile(f, name))
	}
	// More seeds, hostile ones: testdata/fuzz/FuzzParseCAChain.
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCAChain(data, "")
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
		if err != nil && !errors.Is(err, ErrBadCA) {
			t.Fatalf("error is not ErrBadCA: %v", err)
		}
		for _, c := range certs {
			if c == nil {
				t.Fatal("nil certificate")
			}
			_ = x509.NewCertPool()
		}
	})
}
