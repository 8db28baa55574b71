// Package fakemysql is a stand-in for a MySQL 8 server controlled by an
// attacker on the path, speaking the real wire protocol to an unmodified
// go-sql-driver/mysql. It greets as a server whose TLS a stripper removed
// (no CLIENT_SSL), or offers TLS with a certificate of its own (an
// impostor); it asks for caching_sha2_password's full authentication and
// serves its own RSA key, or for mysql_clear_password, and records what
// the client gave up: the password, or only a scramble.
package fakemysql

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/sslconn/sslconn/internal/testkit/serve"
)

// Plugin names.
const (
	CachingSHA2 = "caching_sha2_password"
	Native      = "mysql_native_password"
	Clear       = "mysql_clear_password"
	SHA256      = "sha256_password"
)

// Config is what the server asks of its clients.
type Config struct {
	// Plugin is the greeting's plugin: CachingSHA2 (the default), Native
	// or Clear.
	Plugin string
	// SwitchTo, if set, is the plugin of an AuthSwitchRequest sent after
	// the client's login (Clear: ask for the password itself).
	SwitchTo string
	// SwitchFrom: the switch happens from the SwitchFrom-th connection on
	// (counting from 1; 0: every connection), so that a client first
	// learns the server serves plaintext.
	SwitchFrom int
	// Password is the account's; a client that proves it is let in.
	Password string
	// TLS, if set, is offered (CLIENT_SSL) with this config: an impostor
	// with a certificate of its own. Nil: no TLS, as a stripper presents.
	TLS *tls.Config
	// Key is the RSA key the server serves and decrypts with; nil: one
	// made once per process.
	Key *rsa.PrivateKey
}

// Obtained is what the server got from its clients.
type Obtained struct {
	// Passwords the clients revealed: decrypted from an RSA exchange, or
	// sent in cleartext (mysql_clear_password, or full authentication
	// over TLS).
	Passwords []string
	// Scrambles: the login answers that prove the password without
	// revealing it (native or caching_sha2 scrambles), material for
	// offline guessing only.
	Scrambles [][]byte
	// KeyRequests: how many times a client asked for the server's key.
	KeyRequests int
	// TLS: logins that went inside TLS.
	TLS int
	// Conns: connections the server greeted.
	Conns int
}

// Server is a running fake server.
type Server struct {
	cfg  Config
	loop *serve.Loop

	mu  sync.Mutex
	got Obtained
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// Key returns the RSA key the servers use by default (made once).
func Key() (*rsa.PrivateKey, error) {
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	return key, keyErr
}

// PublicKeyPEM is k's public key as MySQL writes public_key.pem.
func PublicKeyPEM(k *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Start listens on a free loopback port.
func Start(cfg Config) (*Server, error) {
	if cfg.Plugin == "" {
		cfg.Plugin = CachingSHA2
	}
	if cfg.Key == nil {
		k, err := Key()
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	}
	s := &Server{cfg: cfg}
	loop, err := serve.Start(func(c net.Conn) { _ = s.session(&conn{rw: c, raw: c}) })
	if err != nil {
		return nil, err
	}
	s.loop = loop
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.loop.Addr() }

// Obtained returns a copy of what the server got so far.
func (s *Server) Obtained() Obtained {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.got
	o.Passwords = append([]string(nil), o.Passwords...)
	o.Scrambles = append([][]byte(nil), o.Scrambles...)
	return o
}

// Close stops the server and ends its connections; it returns once every
// goroutine has.
func (s *Server) Close() { s.loop.Close() }

// Capability flags.
const (
	capLongPassword   = 0x1
	capFoundRows      = 0x2
	capLongFlag       = 0x4
	capConnectWithDB  = 0x8
	capProtocol41     = 0x200
	capSSL            = 0x800
	capTransactions   = 0x2000
	capSecureConn     = 0x8000
	capMultiStmts     = 0x10000
	capMultiResults   = 0x20000
	capPluginAuth     = 0x80000
	capConnectAttrs   = 0x100000
	capPluginAuthLenc = 0x200000
)

// conn reads and writes packets, counting their sequence numbers.
type conn struct {
	rw  io.ReadWriter
	raw net.Conn
	seq byte
}

func (c *conn) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.rw, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > 1<<20 {
		return nil, errors.New("fakemysql: packet too large")
	}
	c.seq = h[3] + 1
	p := make([]byte, n)
	_, err := io.ReadFull(c.rw, p)
	return p, err
}

func (c *conn) write(p []byte) error {
	h := []byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), c.seq}
	c.seq++
	_, err := c.rw.Write(append(h, p...))
	return err
}

func ok() []byte { return []byte{0x00, 0, 0, 0x02, 0, 0, 0} }

func accessDenied() []byte {
	return append([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0'}, "Access denied (fakemysql)"...)
}

func (s *Server) note(f func(o *Obtained)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.got)
}

// session serves one connection: greeting, login, then OK to every
// command until COM_QUIT.
func (s *Server) session(c *conn) error {
	seed := make([]byte, 20)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	for i := range seed {
		seed[i] = seed[i]%94 + 33 // printable, no NUL, as MySQL makes them
	}
	caps := uint32(capLongPassword | capFoundRows | capLongFlag | capConnectWithDB | capProtocol41 |
		capTransactions | capSecureConn | capMultiStmts | capMultiResults | capPluginAuth | capConnectAttrs | capPluginAuthLenc)
	if s.cfg.TLS != nil {
		caps |= capSSL
	}
	g := []byte{10}
	g = append(g, "8.0.36-fakemysql\x00"...)
	g = binary.LittleEndian.AppendUint32(g, 1)
	g = append(g, seed[:8]...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps))
	g = append(g, 255)
	g = binary.LittleEndian.AppendUint16(g, 0x0002)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps>>16))
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, seed[8:]...)
	g = append(g, 0)
	g = append(g, s.cfg.Plugin...)
	g = append(g, 0)
	var nth int
	s.note(func(o *Obtained) { o.Conns++; nth = o.Conns })
	if err := c.write(g); err != nil {
		return err
	}
	p, err := c.read()
	if err != nil {
		return err
	}
	secure := false
	if len(p) == 32 && binary.LittleEndian.Uint32(p)&capSSL != 0 && s.cfg.TLS != nil {
		tc := tls.Server(c.raw, s.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c.rw, secure = tc, true
		s.note(func(o *Obtained) { o.TLS++ })
		if p, err = c.read(); err != nil {
			return err
		}
	}
	plugin, auth, err := parseLogin(p)
	if err != nil {
		return err
	}
	if s.cfg.SwitchTo != "" && nth >= s.cfg.SwitchFrom {
		if len(auth) > 0 {
			s.note(func(o *Obtained) { o.Scrambles = append(o.Scrambles, bytes.Clone(auth)) })
		}
		plugin = s.cfg.SwitchTo
		if err := c.write(append(append([]byte{0xfe}, plugin+"\x00"...), append(bytes.Clone(seed), 0)...)); err != nil {
			return err
		}
		if auth, err = c.read(); err != nil {
			return err
		}
	}
	pw, proved, err := s.authenticate(c, plugin, auth, seed, secure)
	if err != nil {
		return err
	}
	if pw != nil {
		s.note(func(o *Obtained) { o.Passwords = append(o.Passwords, string(pw)) })
	}
	if !proved && (pw == nil || string(pw) != s.cfg.Password) {
		return c.write(accessDenied())
	}
	if err := c.write(ok()); err != nil {
		return err
	}
	for {
		c.seq = 0
		p, err := c.read()
		if err != nil {
			return err
		}
		if len(p) > 0 && p[0] == 0x01 { // COM_QUIT
			return nil
		}
		if err := c.write(ok()); err != nil {
			return err
		}
	}
}

// authenticate runs plugin's exchange after the client's first answer
// auth. It returns the password if the client revealed it, and whether a
// scramble proved it.
func (s *Server) authenticate(c *conn, plugin string, auth, seed []byte, secure bool) (pw []byte, proved bool, err error) {
	switch plugin {
	case Clear:
		return bytes.TrimSuffix(auth, []byte{0}), false, nil
	case Native:
		if len(auth) > 0 {
			s.note(func(o *Obtained) { o.Scrambles = append(o.Scrambles, bytes.Clone(auth)) })
		}
		return nil, bytes.Equal(auth, nativeScramble(seed, s.cfg.Password)), nil
	case SHA256:
		if secure {
			return bytes.TrimSuffix(auth, []byte{0}), false, nil
		}
		if bytes.Equal(auth, []byte{0x01}) {
			s.note(func(o *Obtained) { o.KeyRequests++ })
			if err := c.write(append([]byte{0x01}, PublicKeyPEM(s.cfg.Key)...)); err != nil {
				return nil, false, err
			}
			var err error
			if auth, err = c.read(); err != nil {
				return nil, false, err
			}
		}
		return s.decrypt(auth, seed), false, nil
	case CachingSHA2:
	default:
		return nil, false, nil
	}
	if len(auth) > 0 {
		s.note(func(o *Obtained) { o.Scrambles = append(o.Scrambles, bytes.Clone(auth)) })
	}
	// The cache is empty (a restart, a switchover): full authentication.
	if err := c.write([]byte{0x01, 0x04}); err != nil {
		return nil, false, err
	}
	p, err := c.read()
	if err != nil {
		return nil, false, err
	}
	switch {
	case secure:
		return bytes.TrimSuffix(p, []byte{0}), false, nil
	case bytes.Equal(p, []byte{0x02}):
		s.note(func(o *Obtained) { o.KeyRequests++ })
		if err := c.write(append([]byte{0x01}, PublicKeyPEM(s.cfg.Key)...)); err != nil {
			return nil, false, err
		}
		if p, err = c.read(); err != nil {
			return nil, false, err
		}
	}
	return s.decrypt(p, seed), false, nil
}

// decrypt reads a password encrypted to the server's key (XOR the seed,
// RSA-OAEP); nil if it was encrypted to another key.
func (s *Server) decrypt(p, seed []byte) []byte {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, s.cfg.Key, p, nil)
	if err != nil {
		return nil
	}
	for i := range plain {
		plain[i] ^= seed[i%len(seed)]
	}
	return bytes.TrimSuffix(plain, []byte{0})
}

// nativeScramble is mysql_native_password's answer to seed:
// SHA1(pw) XOR SHA1(seed + SHA1(SHA1(pw))).
func nativeScramble(seed []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(seed)
	h.Write(h2[:])
	h3 := h.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// parseLogin reads a HandshakeResponse41: the plugin and its answer.
func parseLogin(p []byte) (plugin string, auth []byte, err error) {
	bad := errors.New("fakemysql: malformed login")
	if len(p) < 33 {
		return "", nil, bad
	}
	caps := binary.LittleEndian.Uint32(p)
	_, rest, found := bytes.Cut(p[32:], []byte{0})
	if !found || len(rest) == 0 {
		return "", nil, bad
	}
	n, w := int(rest[0]), 1
	if caps&capPluginAuthLenc != 0 && n >= 0xfb {
		if n != 0xfc || len(rest) < 3 {
			return "", nil, bad // the driver's answers are under 64 KiB
		}
		n, w = int(binary.LittleEndian.Uint16(rest[1:])), 3
	}
	if len(rest) < w+n {
		return "", nil, bad
	}
	auth, rest = rest[w:w+n], rest[w+n:]
	if caps&capConnectWithDB != 0 {
		if _, rest, found = bytes.Cut(rest, []byte{0}); !found {
			return "", nil, bad
		}
	}
	name, _, _ := bytes.Cut(rest, []byte{0})
	return string(name), auth, nil
}
