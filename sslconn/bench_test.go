package sslconn

import (
	"os"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/testenv"
)

// BenchmarkParseCAChain: reading the console's CA download in each format.
//
//	go test -run '^$' -bench ParseCAChain -benchmem ./sslconn
func BenchmarkParseCAChain(b *testing.B) {
	c := testenv.GetCerts(b)
	for _, f := range []struct{ name, path string }{
		{"format=PEM", c.ChainPEM}, {"format=DER", c.CADER}, {"format=P7B", c.P7B}, {"format=P7B-DER", c.P7BDER},
		{"format=JKS", c.JKS}, {"format=zip", c.Zip},
	} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCAChain(data, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCAPool: what each verifying handshake pays to get its roots: a
// CA given as bytes (nothing), or as a file (one stat, to pick up a rotated
// CA without a restart).
func BenchmarkCAPool(b *testing.B) {
	c := testenv.GetCerts(b)
	data, err := os.ReadFile(c.CA)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opt  Option
	}{{"ca=bytes", WithCA(data)}, {"ca=file", WithCAFile(c.CA)}} {
		b.Run(tt.name, func(b *testing.B) {
			cfg, err := New(WithMode(VerifyCA), tt.opt)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cfg.ca.pool(now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
