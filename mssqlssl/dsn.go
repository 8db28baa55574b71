package mssqlssl

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// parseDSN is go-mssqldb's msdsn.Parse, its password kept out of errors;
// pw is the password as the DSN's own syntax holds it (see dsnPassword).
// The TLSConfig Parse derives from the DSN's parameters is dropped:
// newConnector reads the parameters themselves.
func parseDSN(dsn string) (cfg msdsn.Config, pw string, err error) {
	if err := param.CheckLength(dsn); err != nil {
		return msdsn.Config{}, "", err
	}
	pw = dsnPassword(dsn)
	cfg, err = msdsn.Parse(dsn)
	if err != nil {
		return msdsn.Config{}, "", core.Redact(core.InvalidOption("dsn", "invalid SQL Server DSN", err), cfg.Password, pw)
	}
	cfg.TLSConfig = nil
	return cfg, pw, nil
}

// sslParams takes the shared ssl-* parameters from a config's
// Parameters; any other name that looks like a misspelling of one is an
// error.
func sslParams(p map[string]string) (url.Values, error) {
	params := url.Values{}
	var keys []string
	for k, v := range p {
		if param.Is(k) {
			params.Set(k, v)
		} else {
			keys = append(keys, k)
		}
	}
	return params, param.CheckUnknown(keys, func(k string) bool { return strings.EqualFold(k, "tlsmin") })
}

// copyConfig copies a caller's config deeply enough that neither side's
// later changes reach the other, and gives a literal the defaults Parse
// would have: the TCP protocol, maps to write to.
func copyConfig(cfg msdsn.Config) msdsn.Config {
	c := cfg
	if cfg.TLSConfig != nil {
		c.TLSConfig = cfg.TLSConfig.Clone()
	}
	if cfg.Parameters != nil {
		c.Parameters = make(map[string]string, len(cfg.Parameters))
		for k, v := range cfg.Parameters {
			c.Parameters[k] = v
		}
	}
	c.ProtocolParameters = make(map[string]interface{}, len(cfg.ProtocolParameters))
	for k, v := range cfg.ProtocolParameters {
		c.ProtocolParameters[k] = v
	}
	c.Protocols = append([]string(nil), cfg.Protocols...)
	if len(c.Protocols) == 0 {
		c.Protocols = []string{"tcp"}
	}
	c.ActivityID = append([]byte(nil), cfg.ActivityID...)
	return c
}

// splitHostComma reads server=host,port (and tcp:host,port) in odbc: DSNs
// as go-mssqldb's ADO parser does: its odbc: parser keeps the whole value
// as the host name, which then fails DNS on every retry.
func splitHostComma(cfg *msdsn.Config) {
	h, p, ok := strings.Cut(strings.TrimPrefix(cfg.Host, "tcp:"), ",")
	if !ok {
		return
	}
	if port, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16); err == nil {
		cfg.Host, cfg.Port = strings.TrimSpace(h), port
	}
}

// dsnPassword finds the password in a DSN the driver could not parse, to
// keep it out of the error: the URL's userinfo, or an ADO/ODBC
// password= or pwd= value.
func dsnPassword(dsn string) string {
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				if u, err := url.PathUnescape(pw); err == nil {
					return u
				}
				return pw
			}
		}
		return ""
	}
	for _, kv := range strings.Split(strings.TrimPrefix(dsn, "odbc:"), ";") {
		k, v, _ := strings.Cut(kv, "=")
		if k = strings.ToLower(strings.TrimSpace(k)); k == "password" || k == "pwd" {
			return strings.Trim(strings.TrimSpace(v), "{}")
		}
	}
	return ""
}

// parseBool reads a boolean parameter as go-mssqldb does (yes and no too).
func parseBool(v string) (bool, error) {
	switch {
	case strings.EqualFold(v, "yes"):
		return true, nil
	case strings.EqualFold(v, "no"):
		return false, nil
	}
	return strconv.ParseBool(v)
}

// parsedEncryption is the Encryption msdsn.Parse reads from encrypt=v.
func parsedEncryption(v string) (msdsn.Encryption, bool) {
	switch strings.ToLower(v) {
	case "mandatory", "yes", "1", "t", "true":
		return msdsn.EncryptionRequired, true
	case "disable":
		return msdsn.EncryptionDisabled, true
	case "strict":
		return msdsn.EncryptionStrict, true
	case "optional", "no", "0", "f", "false":
		return msdsn.EncryptionOff, true
	}
	return 0, false
}

// encryptionSetting names cfg.Encryption as the user wrote it: encrypt=v
// when the DSN's parameter says so, else the Go constant.
func encryptionSetting(cfg msdsn.Config) string {
	if v, ok := cfg.Parameters[msdsn.Encrypt]; ok {
		if e, ok := parsedEncryption(v); ok && e == cfg.Encryption {
			return "encrypt=" + v
		}
	}
	switch cfg.Encryption {
	case msdsn.EncryptionOff:
		return "Encryption=msdsn.EncryptionOff"
	case msdsn.EncryptionRequired:
		return "Encryption=msdsn.EncryptionRequired"
	case msdsn.EncryptionDisabled:
		return "Encryption=msdsn.EncryptionDisabled"
	case msdsn.EncryptionStrict:
		return "Encryption=msdsn.EncryptionStrict"
	}
	return fmt.Sprintf("Encryption=%d", cfg.Encryption)
}

// parsedTrust is the TrustServerCertificate msdsn.Parse derives from the
// parameters: true without encrypt=, false with encrypt=strict, else the
// parameter's value. ok is false when the parameter is not a boolean.
func parsedTrust(p map[string]string) (trust, ok bool) {
	_, hasEncrypt := p[msdsn.Encrypt]
	trust = !hasEncrypt
	if v, has := p[msdsn.TrustServerCertificate]; has {
		var err error
		if trust, err = parseBool(v); err != nil {
			return false, false
		}
	}
	if strings.EqualFold(p[msdsn.Encrypt], "strict") {
		trust = false
	}
	return trust, true
}

// derivedTLS reports whether cfg.TLSConfig is the one msdsn.Parse built
// from cfg.Parameters (certificate=, hostNameInCertificate=, tlsmin=,
// TrustServerCertificate=), which say all it says, rather than one the
// user set or changed.
func derivedTLS(cfg msdsn.Config) bool {
	tc, p := cfg.TLSConfig, cfg.Parameters
	if tc == nil || p == nil || cfg.Encryption == msdsn.EncryptionDisabled {
		return false
	}
	trust, ok := parsedTrust(p)
	if !ok {
		return false
	}
	host, ok := p[msdsn.HostNameInCertificate]
	if !ok {
		host = cfg.Host
	}
	want, err := msdsn.SetupTLS(p[msdsn.Certificate], p[msdsn.ServerCertificate], trust, host, p[msdsn.TLSMin])
	if err != nil {
		return false
	}
	sameRoots := (want.RootCAs == nil && tc.RootCAs == nil) ||
		(want.RootCAs != nil && tc.RootCAs != nil && want.RootCAs.Equal(tc.RootCAs))
	return sameRoots && tc.ServerName == want.ServerName && tc.InsecureSkipVerify == want.InsecureSkipVerify &&
		tc.MinVersion == want.MinVersion && tc.MaxVersion == 0 && len(tc.Certificates) == 0 &&
		tc.GetClientCertificate == nil && len(tc.CipherSuites) == 0 && tc.VerifyConnection == nil &&
		(tc.VerifyPeerCertificate == nil) == (want.VerifyPeerCertificate == nil)
}

// nativeSettings maps go-mssqldb's own settings onto a mode and options:
// cfg.Encryption (encrypt=), TrustServerCertificate, the TLSConfig the user
// set, and certificate=, hostNameInCertificate= and tlsmin=. encrypt=false,
// which encrypts only the login packet, becomes PREFERRED: the whole
// session encrypted when the server supports it.
func nativeSettings(cfg msdsn.Config) (n core.Native, strict bool, err error) {
	p := cfg.Parameters
	var tc *tls.Config // the user's, to read
	if cfg.TLSConfig != nil && !derivedTLS(cfg) {
		tc = cfg.TLSConfig
	}
	// Verification off: the DSN's TrustServerCertificate=, or, set in
	// code, the TrustServerCertificate field (Parse sets it to true for a
	// DSN without encrypt=, which does not count) or the user's TLSConfig's
	// InsecureSkipVerify.
	paramTrust := ""
	if v, ok := p[msdsn.TrustServerCertificate]; ok {
		if t, err := parseBool(v); err == nil && t {
			paramTrust = "TrustServerCertificate=" + v
		}
	}
	userTrust := ""
	if def, ok := parsedTrust(p); cfg.TrustServerCertificate && (p == nil || !ok || !def) {
		userTrust = "TrustServerCertificate=true"
	} else if tc != nil && tc.InsecureSkipVerify {
		userTrust = "TLSConfig.InsecureSkipVerify"
	}
	switch cfg.Encryption {
	case msdsn.EncryptionDisabled:
		n.Mode, n.Setting = sslconn.Disabled, encryptionSetting(cfg)
	case msdsn.EncryptionOff:
		_, hasEncrypt := p[msdsn.Encrypt]
		switch {
		case hasEncrypt:
			// encrypt=false: login-only encryption, whatever the trust.
			n.Mode, n.Setting = sslconn.Preferred, encryptionSetting(cfg)
		case userTrust != "":
			// Encryption left unset in code: encrypt, unverified.
			n.Mode, n.Setting = sslconn.Required, userTrust
		case tc != nil:
			n.Mode, n.Setting = sslconn.VerifyIdentity, "TLSConfig (a *tls.Config)"
		}
	case msdsn.EncryptionRequired, msdsn.EncryptionStrict:
		n.Mode, n.Setting = sslconn.VerifyIdentity, encryptionSetting(cfg)
		switch {
		case paramTrust != "" && strings.HasPrefix(n.Setting, "encrypt="):
			n.Mode, n.Setting = sslconn.Required, n.Setting+"&"+paramTrust
		case paramTrust != "":
			n.Mode, n.Setting = sslconn.Required, n.Setting+" with "+paramTrust
		case userTrust != "":
			n.Mode, n.Setting = sslconn.Required, n.Setting+" with "+userTrust
		}
		strict = cfg.Encryption == msdsn.EncryptionStrict
	default:
		return n, false, core.InvalidOption("encrypt", fmt.Sprintf("%s is not one of go-mssqldb's Encryption values", encryptionSetting(cfg)), nil)
	}
	if p[msdsn.ServerCertificate] != "" {
		return n, false, core.InvalidOption("serverCertificate", "pinning one server certificate is not supported; give its CA with ssl-ca and use VERIFY_CA or VERIFY_IDENTITY", nil)
	}
	if f := p[msdsn.Certificate]; f != "" && (tc == nil || tc.RootCAs == nil) {
		n.Options = append(n.Options, sslconn.WithCAFile(f))
	}
	if h := p[msdsn.HostNameInCertificate]; h != "" {
		n.Options = append(n.Options, sslconn.WithServerName(h))
	}
	if v := p[msdsn.TLSMin]; v != "" {
		ver, err := tlsinfo.ParseVersion(v)
		if err != nil {
			return n, false, core.InvalidOption("tlsmin", err.Error(), nil)
		}
		n.Options = append(n.Options, sslconn.WithTLSVersions(ver, 0))
	}
	if tc != nil {
		tn, err := core.NativeTLS(tc, "TLSConfig")
		if err != nil {
			return n, false, err
		}
		n.Options = append(n.Options, tn.Options...)
	}
	return n, strict, nil
}
