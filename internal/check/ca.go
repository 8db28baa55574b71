package check

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/smallstep/pkcs7"

	"github.com/sslconn/sslconn/internal/bridge"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/sslconn"
)

// ExpiryWarningDays is when ca inspect starts warning, as the library does.
const ExpiryWarningDays = 30

// WriteInspect prints each certificate of a CA file and returns how many
// expire within ExpiryWarningDays (or have expired).
func WriteInspect(w io.Writer, name, format string, certs []*x509.Certificate, now time.Time) (warnings int) {
	fmt.Fprintf(w, "%s: %s, %d certificate(s)\n", name, format, len(certs))
	for i, c := range certs {
		d := Describe(c, now)
		fmt.Fprintf(w, "\n  [%d] %s\n", i, d.Subject)
		fmt.Fprintf(w, "      issuer     %s\n", d.Issuer)
		if len(d.SANs) > 0 {
			fmt.Fprintf(w, "      SANs       %s\n", strings.Join(d.SANs, ", "))
		}
		fmt.Fprintf(w, "      valid      %s to %s (%s)\n", d.NotBefore.Format("2006-01-02"), d.NotAfter.Format("2006-01-02"), daysText(d.DaysLeft))
		fmt.Fprintf(w, "      CA         %t\n", d.IsCA)
		fmt.Fprintf(w, "      SHA-256    %s\n", d.SHA256)
		if d.DaysLeft <= ExpiryWarningDays {
			warnings++
		}
	}
	return warnings
}

// ReadCA reads a CA file as the library does, its errors naming the
// command's flags (--ca-password).
func ReadCA(path, password string) ([]*x509.Certificate, error) {
	return bridge.ReadCAChain(path, password, &isettings.Sources{Flags: Flags})
}

// Formats ca convert writes.
var Formats = []string{"pem", "p7b", "p7b-der", "jks"}

var aliasUnsafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// Convert writes certs in format: a PEM bundle, PKCS#7 (PEM or DER, as
// openssl crl2pkcs7 makes it) or a Java KeyStore of trusted certificates
// protected by password (default "apsaradb", as the console's).
func Convert(certs []*x509.Certificate, format, password string) ([]byte, error) {
	if len(certs) == 0 {
		return nil, &sslconn.Error{Kind: sslconn.ErrBadCA, Detail: "no certificate to convert"}
	}
	var buf bytes.Buffer
	switch strings.ToLower(format) {
	case "pem":
		for _, c := range certs {
			_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
	case "p7b", "p7b-der":
		var all []byte
		for _, c := range certs {
			all = append(all, c.Raw...)
		}
		der, err := pkcs7.DegenerateCertificate(all)
		if err != nil {
			return nil, fmt.Errorf("check: PKCS#7: %w", err)
		}
		if format == "p7b-der" {
			return der, nil
		}
		_ = pem.Encode(&buf, &pem.Block{Type: "PKCS7", Bytes: der})
	case "jks":
		if password == "" {
			password = sslconn.DefaultJKSPassword
		}
		ks := keystore.New()
		now := time.Now()
		for i, c := range certs {
			alias := aliasUnsafe.ReplaceAllString(strings.ToLower(c.Subject.CommonName), "-")
			if alias == "" || ks.IsTrustedCertificateEntry(alias) {
				alias = fmt.Sprintf("ca-%d", i)
			}
			if err := ks.SetTrustedCertificateEntry(alias, keystore.TrustedCertificateEntry{
				CreationTime: now,
				Certificate:  keystore.Certificate{Type: "X509", Content: c.Raw},
			}); err != nil {
				return nil, fmt.Errorf("check: JKS: %w", err)
			}
		}
		if err := ks.Store(&buf, []byte(password)); err != nil {
			return nil, fmt.Errorf("check: JKS: %w", err)
		}
	default:
		return nil, &sslconn.Error{Kind: sslconn.ErrInvalidOption, Option: "--to",
			Detail: fmt.Sprintf("unknown format %q; want one of %s", format, strings.Join(Formats, ", "))}
	}
	return buf.Bytes(), nil
}
