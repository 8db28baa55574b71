package check

import (
	"fmt"
	"strings"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

func (r *Report) verdict(requested sslconn.Mode) {
	byMode := map[string]ModeResult{}
	for _, m := range r.Modes {
		byMode[m.Mode] = m
		if m.Connected && (m.Encrypted || m.Mode == sslconn.Disabled.String() || r.Strongest == "") {
			r.Strongest = m.Mode
		}
	}
	// With a tls-version the DSN lacks, only DISABLED worked as given.
	r.OK = byMode[requested.String()].Connected && (r.TLSVersion == "" || requested == sslconn.Disabled)
	vi, vca := byMode[sslconn.VerifyIdentity.String()], byMode[sslconn.VerifyCA.String()]
	req := byMode[sslconn.Required.String()]
	// The server offers TLS, but even REQUIRED fails, for a reason of TLS's
	// own: a certificate Go refuses, no common version, mutual TLS.
	tlsFault := !req.Connected && tlsFaults[req.Kind]
	var b strings.Builder
	switch {
	case r.TLSVersion == legacyVersions:
		fmt.Fprintf(&b, "the server's TLS 1.2 offers only legacy cipher suites (it chose %s): tls-version=%s works (add it to the DSN: the legacy suites come with it), as does ssl-cipher=%s; with it, ", r.LegacyCipher, r.TLSVersion, r.LegacyCipher)
	case r.TLSVersion != "":
		fmt.Fprintf(&b, "the server speaks only TLS versions below 1.2: tls-version=%s works (add it to the DSN; the legacy cipher suites come with it); with it, ", r.TLSVersion)
	}
	switch {
	case r.Strongest == "":
		b.WriteString("no mode connects")
		if d := byMode[sslconn.Disabled.String()]; tlsFault {
			b.WriteString(": the server offers TLS but no mode that encrypts connects: " + reason(req))
		} else if d.Error != "" {
			b.WriteString(": " + firstLine(d.Error))
		}
	case vi.Connected:
		b.WriteString("VERIFY_IDENTITY works: encrypted, and the server proved it is " + r.hostName())
		if r.Chain != nil && r.Chain.HostViaCN {
			b.WriteString(". The host name matched only the certificate's Common Name (it has no SAN): " +
				"Go's crypto/tls and newer clients reject such certificates; reissue it with subjectAltName=DNS:" + r.hostName())
		}
	default:
		fmt.Fprintf(&b, "strongest mode that works: %s", r.Strongest)
		if !req.Connected && !byMode[sslconn.Preferred.String()].Encrypted {
			if tlsFault {
				b.WriteString("; the server offers TLS but no mode that encrypts connects: " + reason(req))
				break
			}
			b.WriteString("; the server offers no TLS here: enable SSL on the instance (or connect to its TLS port)")
			break
		}
		b.WriteString(". To reach VERIFY_IDENTITY: ")
		switch {
		case !vca.Connected && vca.Hint != "":
			b.WriteString(reason(vca))
		case vi.Hint != "":
			b.WriteString(reason(vi))
		default:
			b.WriteString(firstLine(vi.Error))
		}
	}
	switch {
	case !r.OK && r.TLSVersion != "" && byMode[requested.String()].Connected:
		fmt.Fprintf(&b, ". The requested mode %s works only with tls-version=%s", requested, r.TLSVersion)
	case !r.OK:
		fmt.Fprintf(&b, ". The requested mode %s does not work", requested)
	}
	r.Verdict = b.String()
}

// tlsFaults are the kinds that fail REQUIRED against a server that does
// offer TLS.
var tlsFaults = map[string]bool{
	KindName(sslconn.ErrBadCertificate):     true,
	KindName(sslconn.ErrTLSVersion):         true,
	KindName(sslconn.ErrClientCertRequired): true,
}

// reason is what went wrong in m and what fixes it: the error's diagnosis
// (which certificate, what it holds) and its advice, without the advice to
// use a weaker mode (the verdict is about reaching the stronger one).
func reason(m ModeResult) string {
	hint := core.WithoutWeaker(m.Hint)
	switch {
	case m.Detail != "" && hint != "":
		return m.Detail + "; " + hint
	case m.Detail != "":
		return m.Detail
	}
	return firstLine(m.Error)
}

func (r *Report) hostName() string {
	if r.Chain != nil {
		return r.Chain.Host
	}
	return r.Address
}

// firstLine is an error's first line, without the "sslconn: " the
// library's errors start with: the report is the command's, one prefix
// is enough.
func firstLine(s string) string {
	return strings.TrimPrefix(strings.SplitN(s, "\n", 2)[0], "sslconn: ")
}
