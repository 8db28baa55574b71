// Package tlsinfo holds TLS facts that the library and the sslconn command
// share and that depend on nothing else: version and cipher suite names in
// OpenSSL's and IANA's spelling, and host-name matching as MySQL's and
// OpenSSL's clients do it.
package tlsinfo

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net"
	"strings"
)

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
	return 0, fmt.Errorf("unknown TLS version %q; use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", s)
}

// ParseVersionList turns MySQL's list of enabled versions into Go's range:
// crypto/tls can only express a contiguous range, so the lowest and the
// highest listed bound it.
func ParseVersionList(v string) (lo, hi uint16, err error) {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' || r == ' ' }) {
		ver, err := ParseVersion(s)
		if err != nil {
			return 0, 0, err
		}
		if lo == 0 || ver < lo {
			lo = ver
		}
		if ver > hi {
			hi = ver
		}
	}
	return lo, hi, nil
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
			return nil, fmt.Errorf("unknown or unsupported cipher suite %q (use OpenSSL names like ECDHE-RSA-AES128-GCM-SHA256 or IANA names)", n)
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

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// HasSAN reports whether the certificate carries a subjectAltName extension.
func HasSAN(cert *x509.Certificate) bool {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			return true
		}
	}
	return false
}

// VerifyHostname checks the certificate against name as VERIFY_IDENTITY does:
// by its SANs, or, for a certificate with no SAN at all (what
// `openssl req -subj "/CN=host"` makes), by its Common Name, as MySQL's and
// OpenSSL's clients do. The error is an x509.HostnameError.
func VerifyHostname(cert *x509.Certificate, name string) error {
	if HasSAN(cert) {
		return cert.VerifyHostname(name)
	}
	if matchCN(cert.Subject.CommonName, name) {
		return nil
	}
	return x509.HostnameError{Certificate: cert, Host: name}
}

func matchCN(cn, name string) bool {
	cn = strings.TrimSuffix(strings.ToLower(cn), ".")
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if cn == "" || name == "" {
		return false
	}
	if ip := net.ParseIP(name); ip != nil {
		cip := net.ParseIP(cn)
		return cip != nil && cip.Equal(ip)
	}
	if cn == name {
		return true
	}
	// A wildcard covers exactly one leftmost label: *.example.com.
	if rest, ok := strings.CutPrefix(cn, "*."); ok {
		if i := strings.IndexByte(name, '.'); i > 0 {
			return name[i+1:] == rest
		}
	}
	return false
}

// HostOnly strips the port from "host:port" and the brackets from an IPv6 literal.
func HostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// Names lists the names a certificate answers to, as VerifyHostname
// matches them: its DNS and IP SANs, or, without any SAN, its Common Name.
func Names(cert *x509.Certificate) []string {
	if !HasSAN(cert) {
		if cert.Subject.CommonName != "" {
			return []string{cert.Subject.CommonName}
		}
		return nil
	}
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
