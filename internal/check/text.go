package check

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "sslconn check: %s at %s (requested mode %s)\n\n", r.Engine, r.Address, r.Requested)
	if r.TLSVersion != "" {
		fmt.Fprintf(w, "  the default TLS versions and cipher suites fail here; with tls-version=%s:\n", r.TLSVersion)
	}
	fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", "MODE", "RESULT", "TLS", "CIPHER / ERROR")
	for _, m := range r.Modes {
		switch {
		case m.NotApplicable != "":
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, "not applicable", "-", m.NotApplicable)
		case m.Connected && m.Encrypted:
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, "connected, TLS", m.Version, m.Cipher)
		case m.Connected:
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, "connected, plaintext", "-", "-")
		default:
			kind := m.Kind
			if kind == "" {
				kind = "error"
			}
			fmt.Fprintf(w, "  %-16s %-22s %-8s %s\n", m.Mode, kind, "-", firstLine(m.Error))
		}
	}
	if c := r.Chain; c != nil {
		fmt.Fprintf(w, "\n  server certificate chain, as sent:\n")
		for i, cert := range c.Certs {
			fmt.Fprintf(w, "  [%d] %s\n", i, cert.Subject)
			fmt.Fprintf(w, "      issuer     %s\n", cert.Issuer)
			if len(cert.SANs) > 0 {
				fmt.Fprintf(w, "      SANs       %s\n", strings.Join(cert.SANs, ", "))
			} else if i == 0 {
				fmt.Fprintf(w, "      SANs       none (a CN-only certificate)\n")
			}
			fmt.Fprintf(w, "      not after  %s (%s)\n", cert.NotAfter.Format("2006-01-02"), daysText(cert.DaysLeft))
		}
		if c.CAVerifies {
			fmt.Fprintf(w, "  the CA (%s) verifies it: yes\n", c.CA)
		} else {
			fmt.Fprintf(w, "  the CA (%s) verifies it: no: %s\n", c.CA, firstLine(c.CAError))
		}
		switch {
		case c.HostOK && c.HostViaCN:
			fmt.Fprintf(w, "  host name %q: matches, on the Common Name only (no SAN)\n", c.Host)
		case c.HostOK:
			fmt.Fprintf(w, "  host name %q: matches a SAN\n", c.Host)
		default:
			fmt.Fprintf(w, "  host name %q: does not match: %s\n", c.Host, firstLine(c.HostError))
		}
	}
	fmt.Fprintf(w, "\n  verdict: %s.\n", strings.TrimSuffix(r.Verdict, "."))
	if r.PlaintextLogin != "" {
		fmt.Fprintf(w, "  warning: %s.\n", r.PlaintextLogin)
	}
}

func daysText(d int) string {
	switch {
	case d < 0:
		return fmt.Sprintf("EXPIRED %d days ago", -d)
	case d <= 30:
		return fmt.Sprintf("%d days left: renew soon", d)
	}
	return fmt.Sprintf("%d days left", d)
}
