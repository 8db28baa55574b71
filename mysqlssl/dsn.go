package mysqlssl

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/sslconn"
)

// parsedDSN is a DSN read once: the driver's config, the shared ssl-*
// parameters and the driver's TLS setting, and whether to handle read-only
// refusals (readonly.go).
type parsedDSN struct {
	cfg  *mysql.Config
	spec core.Spec
	// rejectRO: the DSN has no rejectReadOnly, or rejectReadOnly=true.
	rejectRO bool
	// keyFetch: get-server-public-key=true or allowPublicKeyRetrieval=true
	// (see authguard.go).
	keyFetch bool
}

// parseDSN reads a DSN: it splits the shared ssl-* parameters off,
// keeping the driver's own parameters byte for byte, and parses the rest
// with the driver.
func parseDSN(dsn string) (parsedDSN, error) {
	var d parsedDSN
	if err := param.CheckLength(dsn); err != nil {
		return d, err
	}
	// [user[:password]@]...: parameters start at the first '?' after the
	// last '@': a password may hold '?' and '/', and file paths in ssl-ca
	// need no escaping this way (the driver itself reads parameters after
	// the last '/').
	at := strings.LastIndexByte(dsn, '@')
	base, query := dsn, ""
	if q := strings.IndexByte(dsn[at+1:], '?'); q >= 0 {
		base, query = dsn[:at+1+q], dsn[at+2+q:]
	}
	// The password as the driver reads it (from the first ':' to the last
	// '@'), to keep it out of errors, the driver's own when it cannot
	// parse the DSN included.
	var pw string
	if at >= 0 {
		_, pw, _ = strings.Cut(dsn[:at], ":")
	}
	d.spec.Params = url.Values{}
	d.spec.Secrets = []string{pw}
	var keep, keys []string
	tlsVal, rejectRO := "", false
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		pk, isPK := isPubKeyParam(k)
		switch {
		case isPK:
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return d, core.InvalidOption(k, "badly escaped value", nil)
			}
			name, on, err := pubKeyParam(k, pk, uv)
			if err != nil {
				return d, err
			}
			if name != "" {
				keep = append(keep, "serverPubKey="+url.QueryEscape(name))
				keys = append(keys, "serverPubKey")
			}
			d.keyFetch = d.keyFetch || on
		case param.Is(k):
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return d, core.InvalidOption(k, "badly escaped value", nil)
			}
			d.spec.Params.Set(k, uv)
		case k == "tls":
			keep = append(keep, kv) // the driver reads it; nativeTLS maps it
			tlsVal = v
		default:
			keep = append(keep, kv)
			keys = append(keys, k)
			rejectRO = rejectRO || k == "rejectReadOnly" // the driver reads its value
		}
	}
	if n := countKey(keys, "serverPubKey"); n > 1 {
		return d, core.InvalidOption(pubKeyPath, "server-public-key-path and serverPubKey both name the server's public key; give one", nil)
	}
	// The driver sends parameters it does not know to the server as session
	// variables: a misspelled ssl-mode would come back as SQL error 1064.
	if err := param.CheckUnknown(keys, nil); err != nil {
		return d, core.Redact(err, d.spec.Secrets...)
	}
	cfgDSN := base
	if len(keep) > 0 {
		cfgDSN += "?" + strings.Join(keep, "&")
	}
	cfg, err := mysql.ParseDSN(cfgDSN)
	if err != nil {
		if strings.Contains(err.Error(), "unknown config name") {
			return d, core.InvalidOption("tls", "tls= is not one of false, preferred, skip-verify, true, nor a name registered with mysql.RegisterTLSConfig (or use ssl-mode and ssl-ca instead)", nil)
		}
		return d, core.Redact(core.InvalidOption("dsn", "invalid DSN", err), pw)
	}
	d.spec.Secrets = append(d.spec.Secrets, cfg.Passwd)
	// The driver built cfg.TLS from tls=; read the name instead, as a
	// config built in code is read when it names one.
	cfg.TLS = nil
	if d.spec.Native, err = nativeTLS(cfg, "tls="); err != nil {
		return d, err
	}
	// Errors name the setting as the DSN wrote it (tls=1, not tls=true).
	d.spec.Native.Setting = strings.Replace(d.spec.Native.Setting, "tls="+cfg.TLSConfig, "tls="+tlsVal, 1)
	cfg.TLSConfig, cfg.AllowFallbackToPlaintext = "", false
	d.cfg, d.rejectRO = cfg, !rejectRO || cfg.RejectReadOnly
	return d, nil
}

// nativeTLS reads the TLS settings of a driver config onto a mode and
// options, as the driver itself would use them: a *tls.Config set in code
// first; else cfg.TLSConfig, one of the four names (label says how it was
// written, "tls=" or "TLSConfig=") or a name registered with
// mysql.RegisterTLSConfig. AllowFallbackToPlaintext turns any of them into
// PREFERRED.
func nativeTLS(cfg *mysql.Config, label string) (core.Native, error) {
	var (
		n   core.Native
		err error
	)
	name := strings.ToLower(cfg.TLSConfig)
	switch m, known := nativeModes[name]; {
	case cfg.TLS != nil:
		n, err = core.NativeTLS(cfg.TLS, "TLS")
	case known:
		n = core.Native{Mode: m, Setting: label + cfg.TLSConfig}
	case name != "":
		// A name registered with mysql.RegisterTLSConfig: the driver
		// resolves it when it parses a DSN.
		const probe = "registered.sslconn.invalid"
		reg, perr := mysql.ParseDSN("tcp(" + probe + ":1)/?tls=" + url.QueryEscape(cfg.TLSConfig))
		if perr != nil || reg.TLS == nil {
			return n, core.InvalidOption("tls", fmt.Sprintf("%s%s is not one of false, preferred, skip-verify, true, nor a name registered with mysql.RegisterTLSConfig", label, cfg.TLSConfig), nil)
		}
		if reg.TLS.ServerName == probe {
			reg.TLS.ServerName = "" // the driver's default: the host connected to
		}
		n, err = core.NativeTLS(reg.TLS, label+cfg.TLSConfig)
	}
	if err != nil {
		return n, err
	}
	if cfg.AllowFallbackToPlaintext && n.Mode >= sslconn.Required {
		n.Mode = sslconn.Preferred
		n.Setting += " with allowFallbackToPlaintext"
	}
	return n, nil
}

// nativeModes maps go-sql-driver's tls= values onto modes.
var nativeModes = map[string]sslconn.Mode{
	"false":       sslconn.Disabled,
	"preferred":   sslconn.Preferred,
	"skip-verify": sslconn.Required,
	"true":        sslconn.VerifyIdentity,
}

// The DSN parameters that let a connection without TLS use the server's
// RSA public key for caching_sha2_password and sha256_password (see
// authguard.go), with the MySQL client's names and Connector/J's alias;
// any case, '-' or '_'.
const (
	pubKeyFetch = "get-server-public-key"  // true: fetch it from the server; Connector/J allowPublicKeyRetrieval
	pubKeyPath  = "server-public-key-path" // PEM file holding it: never fetched
)

// pubKeyParam reads one of pubKeyParams (k as written, pk its canonical
// name, v unescaped): the name of the registered key for
// server-public-key-path, or whether get-server-public-key turns fetching on.
func pubKeyParam(k, pk, v string) (name string, fetch bool, err error) {
	if pk == pubKeyPath {
		name, err = registerPubKeyFile(v)
		return name, false, err
	}
	fetch, err = strconv.ParseBool(v)
	if err != nil {
		return "", false, core.InvalidOption(pk, fmt.Sprintf("%s is %q; want true or false", k, v), nil)
	}
	return "", fetch, nil
}

// isPubKeyParam reports k's canonical name if it is one of pubKeyParams.
func isPubKeyParam(k string) (string, bool) {
	pk, ok := pubKeyParams[paramNorm.Replace(strings.ToLower(k))]
	return pk, ok
}

var pubKeyParams = map[string]string{
	"getserverpublickey":      pubKeyFetch,
	"allowpublickeyretrieval": pubKeyFetch,
	"serverpublickeypath":     pubKeyPath,
}

var paramNorm = strings.NewReplacer("-", "", "_", "")

func countKey(keys []string, k string) int {
	n := 0
	for _, x := range keys {
		if x == k {
			n++
		}
	}
	return n
}

// registerPubKeyFile reads an RSA public key (PEM: PUBLIC KEY or RSA
// PUBLIC KEY) and registers it with the driver under a name derived from
// the key, which it returns: the same key gives the same name, so opening
// the DSN again registers nothing new.
func registerPubKeyFile(path string) (string, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return "", core.InvalidOption(pubKeyPath, "cannot read the server's public key", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", core.InvalidOption(pubKeyPath, path+" holds no PEM block; want the server's RSA public key (MySQL's public_key.pem)", nil)
	}
	var key *rsa.PublicKey
	switch block.Type {
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		var k any
		if k, err = x509.ParsePKIXPublicKey(block.Bytes); err == nil {
			var ok bool
			if key, ok = k.(*rsa.PublicKey); !ok {
				return "", core.InvalidOption(pubKeyPath, path+" holds a public key that is not RSA", nil)
			}
		}
	}
	if err != nil {
		return "", core.InvalidOption(pubKeyPath, path+" holds no RSA public key", err)
	}
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(key))
	name := "sslconn-server-public-key-" + hex.EncodeToString(sum[:8])
	mysql.RegisterServerPubKey(name, key)
	return name, nil
}

// readKeyFile reads at most 64 KiB (a public key is under 2 KiB), so that a
// path such as /dev/zero cannot hold NewConnector.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}
