package sslconn

import (
	"crypto/x509"
	"time"
)

// Status is the TLS state of one live connection, as every adapter's Verify
// reports it. Version is like "TLSv1.3"; Cipher is the IANA suite name
// (e.g. "TLS_AES_128_GCM_SHA256"), whatever naming the server used. Mode
// is the SSL mode the client applies, as resolved from its DSN, its driver
// settings and options (a CA alone gives VERIFY_CA, nothing PREFERRED):
// under PREFERRED, Encrypted says whether this connection fell back.
// It is zero when the connection was not made by an sslconn adapter's
// client.
type Status struct {
	Encrypted bool
	Version   string
	Cipher    string
	Mode      Mode
}

func (s Status) String() string {
	if !s.Encrypted {
		return "plaintext"
	}
	return s.Version + " " + s.Cipher
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
	if c.s.SeeCerts != nil {
		c.s.SeeCerts(source, host, certs)
	}
	now := c.s.Clock.Now()
	for _, cert := range certs {
		left := cert.NotAfter.Sub(now)
		if left > c.s.ExpiryWindow || left < 0 {
			continue // expired ones fail verification, with their own error
		}
		if _, dup := c.reported.LoadOrStore(string(cert.Signature), struct{}{}); dup {
			continue
		}
		w := ExpiryWarning{Source: source, Host: host, Subject: cert.Subject.String(), NotAfter: cert.NotAfter, Left: left}
		c.s.Logger.Warn("sslconn: certificate expires soon", "source", source, "host", host,
			"subject", w.Subject, "not_after", cert.NotAfter, "days_left", int(left.Hours()/24))
		if c.s.OnExpiry != nil {
			c.s.OnExpiry(w)
		}
	}
}
