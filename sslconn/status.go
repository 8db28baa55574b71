package sslconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Status is the TLS state of one live connection, as every adapter's Verify
// reports it. Version is like "TLSv1.3"; Cipher is the IANA suite name
// (e.g. "TLS_AES_128_GCM_SHA256"), whatever naming the server used.
type Status struct {
	Encrypted bool
	Version   string
	Cipher    string
}

func (s Status) String() string {
	if !s.Encrypted {
		return "plaintext"
	}
	return s.Version + " " + s.Cipher
}

// StatusOf returns the Status of a TLS connection state; nil means
// plaintext. It also serves inside VerifyConnection, before the handshake
// is marked complete.
func StatusOf(cs *tls.ConnectionState) Status {
	if cs == nil || cs.Version == 0 {
		return Status{}
	}
	return Status{Encrypted: true, Version: VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)}
}

var versionNames = map[uint16]string{
	tls.VersionTLS10: "TLSv1",
	tls.VersionTLS11: "TLSv1.1",
	tls.VersionTLS12: "TLSv1.2",
	tls.VersionTLS13: "TLSv1.3",
}

// VersionName names a TLS version as MySQL and OpenSSL do ("TLSv1.2").
func VersionName(v uint16) string {
	if v == 0 {
		return "default"
	}
	if n, ok := versionNames[v]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", v)
}

// ParseVersion parses "TLSv1.2", "TLSv1", "TLSv1.0", "tls1.2" or "1.2".
func ParseVersion(s string) (uint16, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.TrimPrefix(strings.TrimPrefix(k, "tlsv"), "tls")
	switch k {
	case "1", "1.0", "10":
		return tls.VersionTLS10, nil
	case "1.1", "11":
		return tls.VersionTLS11, nil
	case "1.2", "12":
		return tls.VersionTLS12, nil
	case "1.3", "13":
		return tls.VersionTLS13, nil
	}
	return 0, &Error{Kind: ErrInvalidOption, Option: "tls-version",
		Detail: fmt.Sprintf("unknown TLS version %q; use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", s)}
}

// openSSLNames maps OpenSSL cipher names (what MySQL's ssl-cipher and
// Ssl_cipher use) to crypto/tls suites. TLS 1.3 names are the same in both.
var openSSLNames = map[string]uint16{
	"RC4-SHA":                       tls.TLS_RSA_WITH_RC4_128_SHA,
	"DES-CBC3-SHA":                  tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-RC4-SHA":           tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-RC4-SHA":             tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	"ECDHE-RSA-DES-CBC3-SHA":        tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"TLS_AES_128_GCM_SHA256":        tls.TLS_AES_128_GCM_SHA256,
	"TLS_AES_256_GCM_SHA384":        tls.TLS_AES_256_GCM_SHA384,
	"TLS_CHACHA20_POLY1305_SHA256":  tls.TLS_CHACHA20_POLY1305_SHA256,
}

// CipherSuiteID returns the crypto/tls ID of a suite named the OpenSSL way
// ("ECDHE-RSA-AES128-GCM-SHA256") or the IANA way
// ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").
func CipherSuiteID(name string) (uint16, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if id, ok := openSSLNames[n]; ok {
		return id, true
	}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.Name == n {
			return cs.ID, true
		}
	}
	return 0, false
}

// ParseCipherSuites parses a list separated by ':' (OpenSSL) or ','.
func ParseCipherSuites(list string) ([]uint16, error) {
	var ids []uint16
	for _, n := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		id, ok := CipherSuiteID(n)
		if !ok {
			return nil, &Error{Kind: ErrInvalidOption, Option: "ssl-cipher",
				Detail: fmt.Sprintf("unknown or unsupported cipher suite %q (use OpenSSL names like ECDHE-RSA-AES128-GCM-SHA256 or IANA names)", n)}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CipherName normalises a suite name from either naming to the IANA one;
// unknown names are returned as they are.
func CipherName(name string) string {
	if id, ok := CipherSuiteID(name); ok {
		return tls.CipherSuiteName(id)
	}
	return name
}

// ExpiryWarning reports a certificate that expires within the warning window.
// Source is "ca" for the configured CA, "server" for a server's chain.
type ExpiryWarning struct {
	Source   string
	Host     string
	Subject  string
	NotAfter time.Time
	Left     time.Duration
}

// checkExpiry reports each certificate expiring within the window once per
// Config, to the log and the callback.
func (c *Config) checkExpiry(source, host string, certs []*x509.Certificate) {
	now := c.clock.Now()
	for _, cert := range certs {
		left := cert.NotAfter.Sub(now)
		if left > c.expiryWindow || left < 0 {
			continue // expired ones fail verification, with their own error
		}
		if _, dup := c.reported.LoadOrStore(string(cert.Signature), struct{}{}); dup {
			continue
		}
		w := ExpiryWarning{Source: source, Host: host, Subject: cert.Subject.String(), NotAfter: cert.NotAfter, Left: left}
		c.log.Warn("sslconn: certificate expires soon", "source", source, "host", host,
			"subject", w.Subject, "not_after", cert.NotAfter, "days_left", int(left.Hours()/24))
		if c.onExpiry != nil {
			c.onExpiry(w)
		}
	}
}
