package check

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// ModeResult is one mode's outcome.
type ModeResult struct {
	Mode      string `json:"mode"`
	Connected bool   `json:"connected"`
	Encrypted bool   `json:"encrypted"`
	Version   string `json:"tls_version,omitempty"`
	Cipher    string `json:"cipher,omitempty"`
	Kind      string `json:"error_kind,omitempty"`
	Error     string `json:"error,omitempty"`
	Detail    string `json:"detail,omitempty"` // the error's diagnosis: which certificate, what is wrong
	Hint      string `json:"hint,omitempty"`
	// NotApplicable says why the DSN's own TLS setting rules the mode
	// out (rediss:// cannot be DISABLED); no attempt was made.
	NotApplicable string `json:"not_applicable,omitempty"`
}

// Result is one connection attempt's outcome in mode.
func Result(mode sslconn.Mode, st sslconn.Status, err error) ModeResult {
	res := ModeResult{Mode: mode.String(), Connected: err == nil, Encrypted: st.Encrypted, Version: st.Version, Cipher: st.Cipher}
	if err != nil {
		res.Kind, res.Error = KindName(err), err.Error()
		var se *sslconn.Error
		if errors.As(err, &se) {
			res.Detail, res.Hint = se.Detail, se.Hint
		}
	}
	return res
}

// Cell is the outcome in a word, for tables: the TLS version, "plaintext",
// or the error's sentinel.
func (m ModeResult) Cell() string {
	switch {
	case m.NotApplicable != "":
		return "n/a"
	case m.Connected && m.Encrypted:
		return m.Version
	case m.Connected:
		return "plaintext"
	case m.Kind != "":
		return m.Kind
	}
	return "error: " + strings.SplitN(m.Error, ":", 2)[0]
}

// Cert describes one certificate.
type Cert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
	SHA256    string    `json:"sha256"`
	IsCA      bool      `json:"is_ca"`
}

// Describe turns a certificate into a Cert, days counted from now.
func Describe(c *x509.Certificate, now time.Time) Cert {
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	sum := sha256.Sum256(c.Raw)
	return Cert{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), SANs: sans,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		DaysLeft: int(c.NotAfter.Sub(now).Hours() / 24), SHA256: fingerprint(sum[:]), IsCA: c.IsCA,
	}
}

func fingerprint(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Chain is the server's certificate chain and what the CA and host name
// make of it.
type Chain struct {
	Certs      []Cert `json:"certificates"`
	CA         string `json:"ca"` // the CA file, or "system roots"
	CAVerifies bool   `json:"ca_verifies"`
	CAError    string `json:"ca_error,omitempty"`
	Host       string `json:"host"`
	HostOK     bool   `json:"host_matches"`
	HostViaCN  bool   `json:"host_matched_on_cn"`
	HostError  string `json:"host_error,omitempty"`
}

// Report is the whole check.
type Report struct {
	Engine    Engine       `json:"engine"`
	Address   string       `json:"address"`
	Requested string       `json:"requested_mode"`
	OK        bool         `json:"requested_mode_works"`
	Modes     []ModeResult `json:"modes"`
	Chain     *Chain       `json:"chain,omitempty"`
	Strongest string       `json:"strongest_mode,omitempty"`
	// TLSVersion is the tls-version that reaches a server the default
	// versions and cipher suites do not: the legacy version the server
	// chose ("TLSv1"), or TLSv1,TLSv1.1,TLSv1.2 when it chose TLS 1.2 with
	// a legacy cipher suite (LegacyCipher). Modes are then the outcomes
	// with it.
	TLSVersion   string `json:"tls_version_that_works,omitempty"`
	LegacyCipher string `json:"legacy_cipher,omitempty"`
	Verdict      string `json:"verdict"`
	// PlaintextLogin says, when the requested mode connected without TLS,
	// that the account authenticates over plaintext, what an attacker on
	// the path obtains of its password there, and how to stop it.
	PlaintextLogin string `json:"plaintext_login,omitempty"`
}

// mode is the outcome in m.
func (r *Report) mode(m sslconn.Mode) ModeResult {
	for _, res := range r.Modes {
		if res.Mode == m.String() {
			return res
		}
	}
	return ModeResult{}
}

// analyse judges the chain with the Config the DSN resolved to: against
// its CA, and against the name VERIFY_IDENTITY checks for addr.
func analyse(peers []*x509.Certificate, judge *core.Config, addr string) *Chain {
	now := time.Now()
	ch := &Chain{CA: "system roots", Host: judge.Settings().NameFor(addr)}
	if ca := judge.Settings().CASource; ca != "" {
		ch.CA = ca
	}
	for _, c := range peers {
		ch.Certs = append(ch.Certs, Describe(c, now))
	}
	// The library's own verification, as a VERIFY_CA handshake runs it.
	if err := judge.VerifyChain(sslconn.VerifyCA, addr, peers); err != nil {
		ch.CAError = err.Error()
	} else {
		ch.CAVerifies = true
	}
	if err := tlsinfo.VerifyHostname(peers[0], ch.Host); err != nil {
		ch.HostError = err.Error()
	} else {
		ch.HostOK, ch.HostViaCN = true, !tlsinfo.HasSAN(peers[0])
	}
	return ch
}
