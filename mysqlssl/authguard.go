package mysqlssl

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// The login of a connection without TLS must not hand the password to
// whoever is on the path. go-sql-driver does, in two ways, when nothing
// encrypts the connection (DISABLED, or PREFERRED after the server, or a
// stripper, offered no TLS):
//   - caching_sha2_password's full authentication and sha256_password
//     fetch the server's RSA public key over the connection and send the
//     password encrypted to whatever key came back;
//   - mysql_clear_password sends the password itself
//     (allowCleartextPasswords=true).
// authGuard sits under the driver and reads the login's packets: it
// refuses, before the bytes go out, the key request unless the user opted
// in (get-server-public-key=true, allowPublicKeyRetrieval=true,
// server-public-key-path or the driver's serverPubKey), and the cleartext
// password unless the mode is DISABLED. It steps aside when the client
// starts TLS (SSLRequest) and when the login ends (OK or ERR), so queries
// cost one atomic load.

// authPolicy is what a connection without TLS may send during its login.
type authPolicy struct {
	mode sslconn.Mode
	host string
	// keyFetch: the user opted in to fetching the server's public key.
	keyFetch bool
	// cleartext: mysql_clear_password may send the password (DISABLED:
	// the user chose both no TLS and the cleartext plugin).
	cleartext bool
}

// Protocol constants the guard reads.
const (
	clientConnectWithDB   = 0x00000008
	clientSSL             = 0x00000800
	clientSecureConn      = 0x00008000
	clientPluginAuth      = 0x00080000
	clientPluginAuthLenec = 0x00200000

	sslRequestLen = 32 // an SSLRequest's payload; a login's is longer (user name)

	pluginCachingSHA2 = "caching_sha2_password"
	pluginSHA256      = "sha256_password"
	pluginClear       = "mysql_clear_password"

	// maxGuardPrefix bounds what the guard keeps of one server packet: the
	// packets it reads are a few hundred bytes (a PEM key ~450).
	maxGuardPrefix = 4 << 10
)

// authGuard is the connection the driver reads and writes during login.
type authGuard struct {
	net.Conn
	policy authPolicy
	// refused is the error of a refused write, which the driver replaces
	// with its own "bad connection": attempt returns it instead.
	refused *atomic.Pointer[sslconn.Error]
	// done: TLS started or the login ended; nothing more to inspect.
	done atomic.Bool

	mu sync.Mutex
	// Server side: the packet being read.
	hdr     [4]byte
	nhdr    int
	left    int    // payload bytes of the current packet still to come
	payload []byte // its first maxGuardPrefix bytes
	// Login state.
	greeted    bool   // the server's greeting has been read
	responded  bool   // the client's login (handshake response) went out
	plugin     string // the authentication plugin in use
	fullAuth   bool   // caching_sha2_password asked for full authentication
	keyArrived bool   // the server sent a public key over this connection
}

// guardAuth returns raw with its login guarded by policy; refused receives
// the error of a refused write. A socket stays one (SyscallConn), as the
// driver's liveness check of an idle connection needs it.
func guardAuth(raw net.Conn, policy authPolicy, refused *atomic.Pointer[sslconn.Error]) net.Conn {
	g := &authGuard{Conn: raw, policy: policy, refused: refused}
	if sc, ok := raw.(syscall.Conn); ok {
		return &guardedSocket{g, sc}
	}
	return g
}

type guardedSocket struct {
	*authGuard
	sc syscall.Conn
}

func (c *guardedSocket) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

func (g *authGuard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 && !g.done.Load() {
		g.mu.Lock()
		g.serverBytes(p[:n])
		g.mu.Unlock()
	}
	return n, err
}

func (g *authGuard) Write(p []byte) (int, error) {
	if g.done.Load() {
		return g.Conn.Write(p)
	}
	g.mu.Lock()
	err := g.clientPacket(p)
	g.mu.Unlock()
	if err != nil {
		g.refused.Store(err)
		return 0, err
	}
	return g.Conn.Write(p)
}

// serverBytes splits what the server sent into packets.
func (g *authGuard) serverBytes(b []byte) {
	for len(b) > 0 && !g.done.Load() {
		if g.nhdr < 4 {
			k := copy(g.hdr[g.nhdr:], b)
			g.nhdr += k
			b = b[k:]
			if g.nhdr < 4 {
				return
			}
			g.left = int(g.hdr[0]) | int(g.hdr[1])<<8 | int(g.hdr[2])<<16
			g.payload = g.payload[:0]
		}
		k := min(g.left, len(b))
		if room := maxGuardPrefix - len(g.payload); room > 0 {
			g.payload = append(g.payload, b[:min(k, room)]...)
		}
		g.left -= k
		b = b[k:]
		if g.left == 0 {
			g.serverPacket(g.payload)
			g.nhdr = 0
		}
	}
}

// serverPacket notes what one server packet of the login means.
func (g *authGuard) serverPacket(pl []byte) {
	if !g.greeted {
		g.greeted = true
		if len(pl) > 0 && pl[0] == 0xff {
			g.done.Store(true) // refused before the login (too many connections)
		}
		return
	}
	if !g.responded || len(pl) == 0 {
		return
	}
	switch pl[0] {
	case 0x00, 0xff: // OK, ERR: the login is over
		g.done.Store(true)
	case 0xfe: // AuthSwitchRequest: plugin name, NUL, its data
		name, _, _ := bytes.Cut(pl[1:], []byte{0})
		g.plugin, g.fullAuth = string(name), false
		if len(pl) == 1 {
			g.plugin = "mysql_old_password"
		}
	case 0x01: // AuthMoreData
		switch {
		case len(pl) == 2 && pl[1] == 0x04:
			g.fullAuth = true
		case bytes.HasPrefix(pl[1:], []byte("-----BEGIN")):
			g.keyArrived = true
		}
	}
}

// clientPacket decides whether the client's packet at the start of p may
// go out (the driver writes one whole packet per Write).
func (g *authGuard) clientPacket(p []byte) *sslconn.Error {
	if len(p) < 4 {
		return nil
	}
	n := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
	pl := p[4:min(len(p), 4+n)]
	if !g.responded {
		if n == sslRequestLen && len(pl) >= 4 && binary.LittleEndian.Uint32(pl)&clientSSL != 0 {
			g.done.Store(true) // TLS starts: the driver's login goes inside it
			return nil
		}
		g.responded = true
		plugin, auth := loginPlugin(pl)
		g.plugin = plugin
		if plugin == pluginSHA256 && bytes.Equal(auth, []byte{1}) {
			return g.keyRequest()
		}
		if plugin == pluginClear {
			return g.cleartextPassword()
		}
		return nil
	}
	switch {
	case g.plugin == pluginClear:
		return g.cleartextPassword()
	case g.keyArrived,
		g.plugin == pluginCachingSHA2 && g.fullAuth && bytes.Equal(pl, []byte{2}),
		g.plugin == pluginSHA256 && bytes.Equal(pl, []byte{1}):
		return g.keyRequest()
	}
	return nil
}

// loginPlugin reads a HandshakeResponse41: the plugin it names and its
// authentication response.
func loginPlugin(pl []byte) (plugin string, auth []byte) {
	if len(pl) < 32 {
		return "", nil
	}
	caps := binary.LittleEndian.Uint32(pl)
	rest := pl[32:]
	_, rest, ok := bytes.Cut(rest, []byte{0}) // user name
	if !ok {
		return "", nil
	}
	switch {
	case caps&clientPluginAuthLenec != 0:
		n, w := lenEnc(rest)
		if w == 0 || uint64(len(rest)-w) < n {
			return "", nil
		}
		auth, rest = rest[w:w+int(n)], rest[w+int(n):]
	case caps&clientSecureConn != 0:
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return "", nil
		}
		auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	default:
		auth, rest, _ = bytes.Cut(rest, []byte{0})
	}
	if caps&clientConnectWithDB != 0 {
		if _, rest, ok = bytes.Cut(rest, []byte{0}); !ok {
			return "", auth
		}
	}
	if caps&clientPluginAuth == 0 {
		return "", auth
	}
	name, _, _ := bytes.Cut(rest, []byte{0})
	return string(name), auth
}

// lenEnc reads a length-encoded integer: its value and width (0: malformed).
func lenEnc(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch w := map[byte]int{0xfc: 3, 0xfd: 4, 0xfe: 9}[b[0]]; {
	case b[0] < 0xfb:
		return uint64(b[0]), 1
	case w == 0 || len(b) < w:
		return 0, 0
	default:
		var v [8]byte
		copy(v[:], b[1:w])
		return binary.LittleEndian.Uint64(v[:]), w
	}
}

func (g *authGuard) keyRequest() *sslconn.Error {
	if g.policy.keyFetch {
		return nil
	}
	e := core.NewError(sslconn.ErrServerRequiresTLS, g.policy.mode, g.policy.host,
		"the server asked for the password itself ("+g.plugin+" full authentication) on a connection without TLS, which go-sql-driver would send encrypted to a public key fetched over that same connection: an attacker on the path who stripped TLS would serve its own key and read the password; the key request was not sent", nil)
	e.Option = "get-server-public-key"
	e.Hint = "use ssl-mode=REQUIRED or stronger; or give the server's public key with server-public-key-path=FILE; or accept the risk with get-server-public-key=true (alias allowPublicKeyRetrieval=true)"
	return e
}

func (g *authGuard) cleartextPassword() *sslconn.Error {
	if g.policy.cleartext {
		return nil
	}
	e := core.NewError(sslconn.ErrServerRequiresTLS, g.policy.mode, g.policy.host,
		"the server asked for the password in cleartext (mysql_clear_password) on a connection that fell back to plaintext: an attacker on the path who stripped TLS would read it; it was not sent", nil)
	e.Option = "ssl-mode"
	e.Hint = "use ssl-mode=REQUIRED or stronger, so that the cleartext password goes inside TLS; ssl-mode=DISABLED with allowCleartextPasswords=true sends it in the clear, knowingly"
	return e
}
