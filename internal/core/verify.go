package core

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"sync"
	"sync/atomic"

	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// A Probe finds out which connection a driver used for one request, with
// no help from addresses (which proxies and NAT change): the adapter's
// Verify sends a request that carries the probe's token (Redis ECHO, a
// MongoDB command on a database named after it), and the Conn that writes
// those bytes reports its state to the probe. While no probe is open,
// Conn.Write pays one atomic load for this.
type Probe struct {
	token []byte
	mu    sync.Mutex
	conn  *Conn
}

var (
	probing atomic.Int32
	probes  sync.Map // *Probe -> struct{}
)

// NewProbe opens a probe; Close it when done.
func NewProbe() *Probe {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	p := &Probe{token: []byte("sslconn_verify_" + hex.EncodeToString(b))}
	probes.Store(p, struct{}{})
	probing.Add(1)
	return p
}

// Token is the text the request must carry.
func (p *Probe) Token() string { return string(p.token) }

// Conn is the connection that wrote the token, if one did.
func (p *Probe) Conn() (*Conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn, p.conn != nil
}

// Status is the state of the connection that wrote the token, if one did.
func (p *Probe) Status() (sslconn.Status, bool) {
	c, ok := p.Conn()
	if !ok {
		return sslconn.Status{}, false
	}
	return c.Status(), true
}

// Close ends the probe.
func (p *Probe) Close() {
	if _, ok := probes.LoadAndDelete(p); ok {
		probing.Add(-1)
	}
}

func answerProbes(b []byte, c *Conn) {
	probes.Range(func(k, _ any) bool {
		p := k.(*Probe)
		if bytes.Contains(b, p.token) {
			p.mu.Lock()
			p.conn = c
			p.mu.Unlock()
		}
		return true
	})
}

// StatusOf returns the Status of a TLS connection state; nil means
// plaintext. It also serves inside VerifyConnection, before the handshake
// is marked complete.
func StatusOf(cs *tls.ConnectionState) sslconn.Status {
	if cs == nil || cs.Version == 0 {
		return sslconn.Status{}
	}
	return sslconn.Status{Encrypted: true, Version: tlsinfo.VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)}
}
