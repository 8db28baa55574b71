package core

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sslconn/sslconn/internal/bridge"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// negativeSerial is crypto/x509's text for a certificate it refuses to
// parse since Go 1.23 (crypto/tls wraps it with %v).
const negativeSerial = "x509: negative serial number"

// isSHA1 reports whether err is x509 refusing a SHA-1 signature in the
// chain: crypto/x509 reports it inside an UnknownAuthorityError's text.
func isSHA1(err error) bool {
	var ia x509.InsecureAlgorithmError
	if errors.As(err, &ia) {
		return true
	}
	return strings.Contains(err.Error(), "insecure algorithm SHA1")
}

// explainCert fills in e's detail (and, where the table's advice is
// wrong for the case, its option and hint) from the certificate at fault
// in err: which certificate, by subject, what it holds, and what fixes it.
// With the Config's settings (s, may be nil) it also names what the user
// set when that is what failed: the server name, the CA.
func explainCert(e *sslconn.Error, err error, s *settings) {
	n := &defaultNames
	if s != nil {
		n = &s.Sources
	}
	var (
		he x509.HostnameError
		ci x509.CertificateInvalidError
		ua x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &he) && he.Certificate != nil:
		names := tlsinfo.Names(he.Certificate)
		if len(names) == 0 {
			e.Detail = fmt.Sprintf("the certificate %s names no host", subject(he.Certificate))
			return
		}
		e.Detail = fmt.Sprintf("the certificate %s is for %s, not %q", subject(he.Certificate), strings.Join(names, ", "), he.Host)
		e.Hint = orWeaker("connect by a name the certificate holds, or set "+n.Setting(isettings.ServerName, names[0]), n, "VERIFY_CA", "to check the chain only")
		if s != nil && n.IsSet(isettings.ServerName) && s.ServerName == he.Host {
			e.Detail = fmt.Sprintf("%s does not match the certificate %s (names: %s)", n.Setting(isettings.ServerName, he.Host), subject(he.Certificate), strings.Join(names, ", "))
			e.Hint = orWeaker("set "+n.Setting(isettings.ServerName, names[0])+" or another name the certificate holds, or reissue the certificate for "+he.Host, n, "VERIFY_CA", "to check the chain only")
		}
	case errors.As(err, &ci) && ci.Cert != nil:
		c := ci.Cert
		switch ci.Reason {
		case x509.Expired:
			what, when := "server certificate", "expired on "+day(c.NotAfter)
			if time.Now().Before(c.NotBefore) {
				when = "is not valid until " + day(c.NotBefore)
			}
			if c.IsCA {
				what = "CA certificate"
				e.Option = n.Name(isettings.CA)
				e.Hint = orWeaker("download the instance's current CA chain and point "+n.Name(isettings.CA)+" at it (and check the machine's clock)", n, "REQUIRED", "to encrypt without verifying")
			}
			e.Detail = fmt.Sprintf("the %s %s %s", what, subject(c), when)
		case x509.IncompatibleUsage:
			e.Detail = fmt.Sprintf("the server certificate %s does not allow a TLS server: its extended key usage is %s", subject(c), extKeyUsages(c))
			e.Hint = orWeaker("reissue it with extendedKeyUsage serverAuth (openssl: -addext extendedKeyUsage=serverAuth)", n, "REQUIRED", "to encrypt without verifying")
		case x509.NotAuthorizedToSign:
			e.Detail = fmt.Sprintf("%s signed the server's chain but is not a CA certificate", subject(c))
		}
	case isSHA1(err):
		e.Detail = "a certificate in the server's chain is signed with SHA-1, which Go refuses whatever the CA"
		if errors.As(err, &ua) && ua.Cert != nil {
			e.Detail = fmt.Sprintf("the certificate %s is signed with SHA-1, which Go refuses whatever the CA", subject(ua.Cert))
		}
		e.Hint = orWeaker("reissue it signed with SHA-256 (openssl: -sha256)", n, "REQUIRED", "to encrypt without verifying")
	case errors.As(err, &ua) && ua.Cert != nil:
		e.Detail = fmt.Sprintf("the certificate %s was issued by %s, which the trusted CAs do not hold", subject(ua.Cert), issuer(ua.Cert))
		if s != nil {
			wrongCA(e, err, ua.Cert, s)
		}
	case strings.Contains(err.Error(), negativeSerial):
		e.Detail = "the server certificate has a negative serial number, which Go refuses to parse since Go 1.23, whatever the mode"
		e.Option = "GODEBUG"
		e.Hint = "reissue it with a positive serial number (openssl does by default), or run the process with GODEBUG=x509negativeserial=1"
	}
}

// wrongCA names the CA the user gave, by what it holds, beside the CA the
// server's chain ends at, and how to point the setting at the right one.
func wrongCA(e *sslconn.Error, err error, leaf *x509.Certificate, s *settings) {
	n := &s.Sources
	if !n.IsSet(isettings.CA) || s.CACerts == nil {
		return // the system roots, or a driver's pool: nothing to name
	}
	// The chain the server sent, when the verifier kept it; else the leaf.
	last := leaf
	var ce *bridge.ChainError
	if errors.As(err, &ce) && len(ce.Chain) > 0 {
		// A root the server sends itself is where the chain ends: name
		// what it issued.
		chain := ce.Chain
		for len(chain) > 1 && bytes.Equal(chain[len(chain)-1].RawIssuer, chain[len(chain)-1].RawSubject) {
			chain = chain[:len(chain)-1]
		}
		last = chain[len(chain)-1]
	}
	var held []string
	for _, c := range s.CACerts() {
		held = append(held, c.Subject.String())
	}
	given := "the CA given (" + n.Name(isettings.CA) + ")"
	if s.CAFile != "" {
		given = s.CAFile
	}
	e.Detail = fmt.Sprintf("%s holds %s; the server's chain ends at %s (issuer of %s)", given, strings.Join(held, ", "), issuer(last), last.Subject.String())
	e.Hint = orWeaker("point "+n.Name(isettings.CA)+" at the CA that holds "+issuer(last)+" (the instance's CA chain)", n, "REQUIRED", "to encrypt without verifying")
}

func subject(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return "(" + s + ")"
	}
	return "(no subject)"
}

func issuer(c *x509.Certificate) string {
	if s := c.Issuer.String(); s != "" {
		return s
	}
	return "an empty issuer"
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func extKeyUsages(c *x509.Certificate) string {
	var u []string
	for _, k := range c.ExtKeyUsage {
		switch k {
		case x509.ExtKeyUsageServerAuth:
			u = append(u, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			u = append(u, "clientAuth")
		case x509.ExtKeyUsageCodeSigning:
			u = append(u, "codeSigning")
		case x509.ExtKeyUsageEmailProtection:
			u = append(u, "emailProtection")
		default:
			u = append(u, fmt.Sprintf("usage %d", k))
		}
	}
	if len(u) == 0 {
		return "empty"
	}
	return strings.Join(u, ", ") + " only"
}

// selectedVersion is crypto/tls's text for a server that answered with a
// version below the client's minimum (a server that predates TLS 1.3's
// supported_versions extension does: newer ones send a protocol_version
// alert and say nothing of their own versions).
var selectedVersion = regexp.MustCompile(`tls: server selected unsupported protocol version ([0-9a-f]+)`)

// explainVersion names the version such a server chose, and so the
// tls-version that reaches it.
func explainVersion(e *sslconn.Error, err error, s *settings) {
	n := &defaultNames
	if s != nil {
		n = &s.Sources
	}
	m := selectedVersion.FindStringSubmatch(err.Error())
	if e.Kind != sslconn.ErrTLSVersion || m == nil {
		return
	}
	v, perr := strconv.ParseUint(m[1], 16, 16)
	if perr != nil || v >= tls.VersionTLS12 || v < tls.VersionTLS10 {
		return
	}
	name := tlsinfo.VersionName(uint16(v))
	e.Detail = fmt.Sprintf("the server chose %s, below the lowest version offered", name)
	e.Hint = fmt.Sprintf("set %s (a lowest version below TLS 1.2 also offers the legacy cipher suites), or enable TLS 1.2 on the instance", n.Setting(isettings.TLSVersion, name))
}
