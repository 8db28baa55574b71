package testenv

// CertCase is one certificate users meet that the library must refuse at
// once (no retry), with a text that names the certificate at fault and
// what fixes it (issue #17). The adapters' tests run each against a real
// server given Server with SetCert.
type CertCase struct {
	Name   string
	Server Pair     // the server's certificate
	CA     string   // the client's ssl-ca
	Modes  []string // the ssl-mode values that must fail so
	Kind   string   // the sentinel's name (core.KindName)
	Says   []string // what the error text must hold
	// AtConfig: the error comes from NewConnector or NewClient, before
	// any connection (a CA input that holds no CA).
	AtConfig bool
	// RequiredConnects: REQUIRED, which checks no certificate, connects
	// (the error's advice says so).
	RequiredConnects bool
}

// CertCases are the cases of issue #17 that involve the server's
// certificate.
func CertCases(c *Certs) []CertCase {
	verify := []string{"VERIFY_CA", "VERIFY_IDENTITY"}
	return []CertCase{
		{Name: "clientAuth-only key usage", Server: c.ClientAuthOnly, CA: c.CA, Modes: verify, Kind: "ErrBadCertificate",
			Says: []string{"(CN=sslconn-clientauth-only)", "extended key usage is clientAuth only", "extendedKeyUsage serverAuth", "ssl-mode=REQUIRED"}, RequiredConnects: true},
		{Name: "expired CA", Server: c.ExpiredCAServer, CA: c.ExpiredCA, Modes: verify, Kind: "ErrCertExpired",
			Says: []string{"CA certificate (CN=expired-root-ca) expired on 2021-01-01", "point ssl-ca at it"}, RequiredConnects: true},
		{Name: "SHA-1 signature", Server: c.SHA1, CA: c.CA, Modes: verify, Kind: "ErrBadCertificate",
			Says: []string{"(CN=sslconn-sha1-signed) is signed with SHA-1", "reissue it signed with SHA-256"}, RequiredConnects: true},
		{Name: "negative serial", Server: c.NegativeSerial, CA: c.CA, Modes: []string{"REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"}, Kind: "ErrBadCertificate",
			Says: []string{"negative serial number", "GODEBUG=x509negativeserial=1", "reissue it with a positive serial number"}},
		{Name: "host name mismatch", Server: c.OtherHost, CA: c.CA, Modes: []string{"VERIFY_IDENTITY"}, Kind: "ErrHostnameMismatch",
			Says: []string{`(CN=other.example.com) is for other.example.com, not "localhost"`, "ssl-server-name=other.example.com"}, RequiredConnects: true},
		{Name: "ssl-ca is the server's own certificate", Server: c.SAN, CA: c.SAN.Cert, Modes: verify, Kind: "ErrBadCA", AtConfig: true,
			Says: []string{`holds no CA certificate, only "CN=sslconn-test-server", issued by "CN=root-ca"`, "point ssl-ca at the CA chain"}},
	}
}
