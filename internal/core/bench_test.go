package core

import (
	"io"
	"net"
	"testing"
)

// BenchmarkPeerCheck: the check before each write of a connection from
// Dial (and mssqlssl's), asking the kernel whether the server closed it,
// against the same check right after a read, which skips the kernel.
func BenchmarkPeerCheck(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	p := newWatch(raw)
	b.Run("idle", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.closed(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("after-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.received(1)
			if err := p.closed(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
