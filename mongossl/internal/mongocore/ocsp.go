package mongocore

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// The revocation check. mongo-driver checks OCSP after every verified TLS
// handshake it does itself (x/mongo/driver/ocsp); with TLS in this
// package's dialer, the dialer does the same for the stapled response:
//
//   - a Must-Staple certificate without a staple is refused;
//   - a staple that does not parse, does not cover the server's
//     certificate, is not signed by its issuer (or by a delegate of the
//     issuer with the OCSP-signing usage), or is not current, is refused;
//   - a staple that says "revoked" is refused; "good" and "unknown" pass.
//
// Unlike the driver, it never asks the OCSP responders named in the
// certificate when there is no staple (as the driver does unless
// tlsDisableOCSPEndpointCheck=true), and keeps no cache of responses.
//
// The issuer is the certificate the server sent after its own that signed
// it. A server that sends its certificate alone, signed directly by a root,
// leaves the issuer unknown here (the roots are the verifier's): the
// staple's signature cannot be checked, and only a "revoked" in it counts.
// It still came over the handshake the server's key authenticated.

// Refused: the server's certificate is revoked or its staple is unusable.
// The kind is ErrUnknownAuthority, the certificate is not to be trusted;
// the text says why.
func revocationError(mode sslconn.Mode, host, detail string, err error) *sslconn.Error {
	return &sslconn.Error{
		Kind: sslconn.ErrUnknownAuthority, Mode: mode, Host: host,
		Option: "tlsDisableCertificateRevocationCheck", Detail: detail, Err: err,
		Hint: "the server needs a certificate that is not revoked and, if it staples, a current OCSP response from its issuer; " +
			"tlsDisableCertificateRevocationCheck=true (SetDisableCertificateRevocationCheck) turns the check off",
	}
}

// checkRevocation checks the stapled OCSP response of a connection made
// in VERIFY_CA or VERIFY_IDENTITY.
func (d *Dialer) checkRevocation(c net.Conn, addr string) error {
	if !d.Revocation {
		return nil
	}
	cc, ok := c.(*core.Conn)
	if !ok || cc.Mode() < sslconn.VerifyCA {
		return nil
	}
	cs, ok := cc.ConnectionState()
	if !ok {
		return nil
	}
	return checkStaple(cs, time.Now(), cc.Mode(), addr)
}

var (
	// TLSFeatureOID is the TLS feature extension (RFC 7633), of Must-Staple.
	TLSFeatureOID     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}
	mustStapleFeature = big.NewInt(5) // status_request
)

// checkStaple judges the stapled OCSP response in cs as mongo-driver does:
// nil, or an ErrUnknownAuthority *sslconn.Error saying why not.
func checkStaple(cs tls.ConnectionState, now time.Time, mode sslconn.Mode, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // the verifier has refused it already
	}
	leaf := cs.PeerCertificates[0]
	name := subject(leaf)
	must, err := isMustStaple(leaf)
	if err != nil {
		return revocationError(mode, host, "the server's certificate "+name+" has a malformed TLS feature extension", err)
	}
	staple := cs.OCSPResponse
	if len(staple) == 0 {
		if must {
			return revocationError(mode, host, "the server's certificate "+name+" requires a stapled OCSP response (Must-Staple) and the server sent none", nil)
		}
		return nil
	}
	issuer := issuerOf(cs.PeerCertificates)
	res, err := ocsp.ParseResponseForCert(staple, leaf, issuer)
	if err != nil {
		return revocationError(mode, host, "the server's stapled OCSP response for "+name+" is invalid", err)
	}
	if err := checkResponse(res, leaf, issuer, now); err != nil {
		return revocationError(mode, host, "the server's stapled OCSP response for "+name+" is invalid", err)
	}
	if res.Status == ocsp.Revoked {
		return revocationError(mode, host, fmt.Sprintf("the server's certificate %s (serial %s) is revoked: its stapled OCSP response says so (revoked at %s, reason %d)",
			name, leaf.SerialNumber, res.RevokedAt.UTC().Format(time.RFC3339), res.RevocationReason), nil)
	}
	return nil
}

func subject(c *x509.Certificate) string {
	return "\"" + c.Subject.String() + "\""
}

// issuerOf is the certificate of the chain the server sent that signed its
// certificate, the certificate itself when self-signed, or nil.
func issuerOf(chain []*x509.Certificate) *x509.Certificate {
	leaf := chain[0]
	for _, c := range chain[1:] {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	if bytes.Equal(leaf.RawSubject, leaf.RawIssuer) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		return leaf
	}
	return nil
}

// checkResponse is the driver's verifyResponse: a delegated responder
// needs the OCSP-signing usage, and the response must be current.
func checkResponse(res *ocsp.Response, leaf, issuer *x509.Certificate, now time.Time) error {
	if res.Certificate != nil && !issuerResponds(res, leaf, issuer) {
		ok := false
		for _, u := range res.Certificate.ExtKeyUsage {
			ok = ok || u == x509.ExtKeyUsageOCSPSigning
		}
		if !ok {
			return errors.New("the delegated responder's certificate lacks the OCSP signing extended key usage")
		}
	}
	if res.ThisUpdate.After(now) {
		return fmt.Errorf("its thisUpdate time %s is in the future", res.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !res.NextUpdate.IsZero() && res.NextUpdate.Before(now) {
		return fmt.Errorf("its nextUpdate time %s has passed", res.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// issuerResponds reports whether the response names the issuer itself as
// its responder (by name, or by the hash of its key).
func issuerResponds(res *ocsp.Response, leaf, issuer *x509.Certificate) bool {
	if issuer == nil {
		return res.RawResponderName != nil && bytes.Equal(res.RawResponderName, leaf.RawIssuer)
	}
	if res.RawResponderName != nil && bytes.Equal(res.RawResponderName, issuer.RawSubject) {
		return true
	}
	if res.ResponderKeyHash == nil {
		return false
	}
	der, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return false
	}
	req, err := ocsp.ParseRequest(der)
	return err == nil && bytes.Equal(res.ResponderKeyHash, req.IssuerKeyHash)
}

// isMustStaple reports whether the certificate carries the TLS feature
// extension with status_request (RFC 7633).
func isMustStaple(c *x509.Certificate) (bool, error) {
	var ext *pkix.Extension
	for i := range c.Extensions {
		if c.Extensions[i].Id.Equal(TLSFeatureOID) {
			ext = &c.Extensions[i]
			break
		}
	}
	if ext == nil {
		return false, nil
	}
	var features []*big.Int
	if _, err := asn1.Unmarshal(ext.Value, &features); err != nil {
		return false, err
	}
	for _, f := range features {
		if f.Cmp(mustStapleFeature) == 0 {
			return true, nil
		}
	}
	return false, nil
}
