package sslconn

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/smallstep/pkcs7"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/sslconn/sslconn/internal/bridge"
	isettings "github.com/sslconn/sslconn/internal/settings"
)

// DefaultJKSPassword is the password of the ApsaraDB-CA-Chain.jks that the
// consoles hand out; ParseCAChain uses it when the password is empty.
const DefaultJKSPassword = "apsaradb"

// maxCAInput bounds what ParseCAChain reads from one input (and from one
// member of a zip), so a hostile or mistaken file cannot exhaust memory.
const maxCAInput = 16 << 20

// ParseCAChain parses CA certificates from data, detecting the format from
// the content: a PEM bundle (CERTIFICATE or PKCS7 blocks), DER (one or more
// certificates), PKCS#7 (.p7b, PEM or DER), a Java KeyStore (.jks), a PKCS#12
// trust store, or a zip holding any of them, as the consoles' CA download is.
// An empty password means DefaultJKSPassword for keystores. Errors match
// ErrBadCA and never contain the password.
//
// Input that holds certificates but no CA certificate (nor a self-signed
// one) is ErrBadCA too: a server's own certificate given as the CA works
// until that certificate is renewed, then fails; OpenSSL and the MySQL
// client refuse it at once, and so does this.
func ParseCAChain(data []byte, password string) ([]*x509.Certificate, error) {
	return parseCAChain(data, password, nil)
}

// parseCAChain is ParseCAChain, its errors naming settings as n says (nil:
// DSN parameters).
func parseCAChain(data []byte, password string, n *isettings.Sources) ([]*x509.Certificate, error) {
	certs, format, err := parseCA(data, password, 0)
	if err == nil {
		err = checkHoldsCA(certs)
	}
	if err != nil {
		return nil, badCA(format, err, n)
	}
	return certs, nil
}

// ReadCAChain reads and parses a CA file; see ParseCAChain. Errors name the file.
func ReadCAChain(path, password string) ([]*x509.Certificate, error) {
	return readCAChain(path, password, nil)
}

// readCAChain is ReadCAChain, its errors naming settings as n says (nil:
// DSN parameters).
func readCAChain(path, password string, n *isettings.Sources) ([]*x509.Certificate, error) {
	if n == nil {
		n = &isettings.Sources{}
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, &Error{Kind: ErrBadCA, Option: n.Name(isettings.CA), Detail: "cannot read CA file", Err: err}
	}
	certs, format, err := parseCA(data, password, 0)
	if err == nil {
		err = checkHoldsCA(certs)
	}
	if err != nil {
		e := badCA(format, err, n)
		e.Detail = fmt.Sprintf("%s (%s)", e.Detail, path)
		return nil, e
	}
	return certs, nil
}

// notCAError says that CA input holds no CA certificate: what it holds, and
// who issued it.
type notCAError struct{ certs []*x509.Certificate }

func (e *notCAError) Error() string {
	c := e.certs[0]
	what := fmt.Sprintf("%q, issued by %q", c.Subject.String(), c.Issuer.String())
	if len(e.certs) > 1 {
		what = fmt.Sprintf("%d certificates, the first %s", len(e.certs), what)
	}
	return "it holds no CA certificate, only " + what + ": a server's own certificate is refused as the CA (it would stop working when the certificate is renewed); give the CA that issued it (the instance's CA chain)"
}

// checkHoldsCA returns a *notCAError when none of certs is a CA certificate
// or self-signed.
func checkHoldsCA(certs []*x509.Certificate) error {
	for _, c := range certs {
		if (c.BasicConstraintsValid && c.IsCA) || isSelfSigned(c) {
			return nil
		}
	}
	return &notCAError{certs}
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCAInput {
		return nil, fmt.Errorf("larger than %d MiB", maxCAInput>>20)
	}
	return data, nil
}

// errWrongPassword is what a keystore whose integrity check fails reports.
var errWrongPassword = errors.New("wrong keystore password or corrupt keystore")

// badCA is the ErrBadCA error for CA input of format, naming settings as
// n says (nil: DSN parameters).
func badCA(format string, err error, n *isettings.Sources) *Error {
	if n == nil {
		n = &isettings.Sources{}
	}
	ca := n.Name(isettings.CA)
	e := &Error{Kind: ErrBadCA, Option: ca, Err: err}
	if format != "" {
		e.Detail = format
	}
	var notCA *notCAError
	if errors.As(err, &notCA) {
		e.Hint = "point " + ca + " at the CA chain that issued the server's certificate (e.g. ApsaraDB-CA-Chain.pem), not at the certificate itself"
	} else if errors.Is(err, errWrongPassword) {
		e.Option = n.Name(isettings.CAPassword)
		e.Hint = "set " + e.Option + " to the keystore's password (ApsaraDB's is " + DefaultJKSPassword + ")"
		if n.IsSet(isettings.CAPassword) {
			e.Hint = "the password given with " + e.Option + " does not open the keystore: " + e.Hint
		}
	} else {
		e.Hint = "give " + ca + " a PEM, DER, PKCS#7 (.p7b), JKS or PKCS#12 file, or the CA zip"
	}
	return e
}

var (
	zipMagic    = []byte("PK\x03\x04")
	zipEmpty    = []byte("PK\x05\x06") // an empty archive is only its end record
	jksMagic    = []byte{0xFE, 0xED, 0xFE, 0xED}
	jceksMagic  = []byte{0xCE, 0xCE, 0xCE, 0xCE}
	pemBegin    = []byte("-----BEGIN ")
	errNoCert   = errors.New("no certificate found")
	errEmpty    = errors.New("input is empty")
	errTooDeep  = errors.New("zip nested too deeply")
	errUnknown  = errors.New("not a PEM, DER, PKCS#7, JKS, PKCS#12 or zip input")
	errTruncPEM = errors.New("PEM block is truncated or malformed")
)

// parseCA returns the certificates, the format it detected (for messages) and an error.
func parseCA(data []byte, password string, depth int) ([]*x509.Certificate, string, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, "", errEmpty
	case bytes.HasPrefix(data, zipMagic) || bytes.HasPrefix(data, zipEmpty):
		if depth > 0 {
			return nil, "zip", errTooDeep
		}
		certs, err := parseZip(data, password)
		return certs, "zip", err
	case bytes.HasPrefix(data, jksMagic):
		certs, err := parseJKS(data, password)
		return certs, "JKS", err
	case bytes.HasPrefix(data, jceksMagic):
		return nil, "JCEKS", errors.New("JCEKS keystores are not supported; export the CA with keytool -exportcert -rfc")
	case bytes.Contains(data, pemBegin):
		certs, err := parsePEM(data)
		return certs, "PEM", err
	case data[0] == 0x30: // an ASN.1 SEQUENCE: DER certificate(s), PKCS#7 or PKCS#12
		return parseDER(data, password)
	}
	return nil, "", errUnknown
}

func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		start := bytes.Index(rest, pemBegin)
		if start < 0 {
			break
		}
		var block *pem.Block
		block, rest = pem.Decode(rest[start:])
		if block == nil {
			return nil, errTruncPEM
		}
		switch block.Type {
		case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PKCS7", "CERTIFICATE CHAIN":
			cs, err := parsePKCS7(block.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, cs...)
		}
		// Keys, CRLs and parameters are skipped: a CA bundle may sit beside them.
	}
	if len(certs) == 0 {
		return nil, errNoCert
	}
	return certs, nil
}

func parsePKCS7(der []byte) ([]*x509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7: %w", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, errNoCert
	}
	return p7.Certificates, nil
}

func parseDER(data []byte, password string) ([]*x509.Certificate, string, error) {
	if certs, err := x509.ParseCertificates(data); err == nil && len(certs) > 0 {
		return certs, "DER", nil
	}
	if certs, err := parsePKCS7(data); err == nil {
		return certs, "PKCS#7", nil
	}
	if password == "" {
		password = DefaultJKSPassword
	}
	certs, err := pkcs12.DecodeTrustStore(data, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return nil, "PKCS#12", errWrongPassword
	case err == nil && len(certs) == 0:
		return nil, "PKCS#12", errNoCert
	case err == nil:
		return certs, "PKCS#12", nil
	}
	// Not one of the formats: say so rather than echo three parsers' complaints.
	return nil, "DER", errors.New("not a valid DER certificate, PKCS#7 or PKCS#12 structure (truncated or corrupt?)")
}

func parseJKS(data []byte, password string) ([]*x509.Certificate, error) {
	if password == "" {
		password = DefaultJKSPassword
	}
	if err := checkJKSLengths(data); err != nil {
		return nil, fmt.Errorf("truncated or corrupt keystore: %w", err)
	}
	ks := keystore.New()
	pw := []byte(password)
	err := ks.Load(bytes.NewReader(data), pw)
	if err != nil {
		// keystore-go reports a failed integrity check as "invalid digest".
		if strings.Contains(err.Error(), "invalid digest") {
			return nil, errWrongPassword
		}
		return nil, fmt.Errorf("truncated or corrupt keystore: %w", err)
	}
	aliases := ks.Aliases()
	sort.Strings(aliases)
	var certs []*x509.Certificate
	for _, alias := range aliases {
		var raw [][]byte
		if ks.IsTrustedCertificateEntry(alias) {
			e, err := ks.GetTrustedCertificateEntry(alias)
			if err != nil {
				return nil, err
			}
			raw = append(raw, e.Certificate.Content)
		} else if chain, err := ks.GetPrivateKeyEntryCertificateChain(alias); err == nil {
			for _, c := range chain {
				raw = append(raw, c.Content)
			}
		}
		for _, der := range raw {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", alias, err)
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, errNoCert
	}
	return certs, nil
}

// parseZip reads every member it recognises and returns their certificates,
// without duplicates (the console's zip holds the same chain three times).
// A member that fails is ignored when another one yields certificates, so a
// .jks with another password does not spoil the .pem beside it.
func parseZip(data []byte, password string) ([]*x509.Certificate, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("corrupt or truncated zip: %w", err)
	}
	var (
		certs []*x509.Certificate
		seen  = map[string]bool{}
		errs  []error
	)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasPrefix(path.Base(f.Name), ".") || strings.HasPrefix(f.Name, "__MACOSX/") {
			continue
		}
		if f.UncompressedSize64 > maxCAInput {
			errs = append(errs, fmt.Errorf("%s: larger than %d MiB", f.Name, maxCAInput>>20))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
			continue
		}
		member, err := io.ReadAll(io.LimitReader(rc, maxCAInput))
		rc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
			continue
		}
		cs, _, err := parseCA(member, password, 1)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
			continue
		}
		for _, c := range cs {
			if k := string(c.Raw); !seen[k] {
				seen[k] = true
				certs = append(certs, c)
			}
		}
	}
	if len(certs) > 0 {
		return certs, nil
	}
	if len(errs) == 0 {
		return nil, errNoCert
	}
	return nil, errors.Join(errs...)
}

// checkJKSLengths walks a JKS's length fields and checks each against the
// bytes left, before keystore-go allocates whatever length a corrupt or
// hostile file claims (up to 4 GiB each). It parses nothing else.
func checkJKSLengths(b []byte) error {
	errShort := errors.New("a length field points past the end")
	pos := 0
	u16 := func() (int, bool) {
		if pos+2 > len(b) {
			return 0, false
		}
		v := int(b[pos])<<8 | int(b[pos+1])
		pos += 2
		return v, true
	}
	u32 := func() (int, bool) {
		if pos+4 > len(b) {
			return 0, false
		}
		v := int(b[pos])<<24 | int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		pos += 4
		return v, true
	}
	skip := func(n int) bool {
		if n < 0 || pos+n > len(b) {
			return false
		}
		pos += n
		return true
	}
	str := func() bool { n, ok := u16(); return ok && skip(n) }
	blob := func() bool { n, ok := u32(); return ok && skip(n) }
	cert := func(version int) bool { return (version == 1 || str()) && blob() }

	if !skip(4) { // magic
		return errShort
	}
	version, ok := u32()
	if !ok || (version != 1 && version != 2) {
		return errors.New("unknown JKS version")
	}
	count, ok := u32()
	if !ok || count > len(b) {
		return errShort
	}
	for range count {
		tag, ok := u32()
		if !ok || !str() || !skip(8) { // alias, timestamp
			return errShort
		}
		switch tag {
		case 1: // private key: key, then its chain
			if !blob() {
				return errShort
			}
			n, ok := u32()
			if !ok || n > len(b) {
				return errShort
			}
			for range n {
				if !cert(version) {
					return errShort
				}
			}
		case 2: // trusted certificate
			if !cert(version) {
				return errShort
			}
		default:
			return errors.New("unknown JKS entry tag")
		}
	}
	if !skip(20) { // SHA-1 digest
		return errShort
	}
	return nil
}

func init() {
	bridge.ReadCAChain = readCAChain
	bridge.ReadCerts = func(path, password string) ([]*x509.Certificate, string, error) {
		data, err := readLimited(path)
		if err != nil {
			return nil, "", err
		}
		certs, format, err := parseCA(data, password, 0)
		if format == "PEM" && bytes.Contains(data, []byte("-----BEGIN PKCS7")) {
			format = "PEM (PKCS#7)"
		}
		return certs, format, err
	}
}
