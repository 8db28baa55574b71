package sslconn

import (
	"fmt"
	"strings"
)

// Mode is an SSL mode, named as MySQL's --ssl-mode values. The zero value means
// "not set": the adapter then derives the mode from the driver's own TLS setting,
// from a CA given alone (VerifyCA), or falls back to Preferred. Modes are
// ordered from weakest to strongest, so m >= VerifyCA means "verifies".
type Mode int

const (
	// Disabled never encrypts.
	Disabled Mode = iota + 1
	// Preferred encrypts when the server offers TLS and falls back to plaintext,
	// per connection, only when it offers none. It checks no certificate, so it
	// does not protect against an active attacker.
	Preferred
	// Required always encrypts and fails without TLS; it checks no certificate.
	Required
	// VerifyCA encrypts and checks the server's chain against the CA, but not
	// the host name.
	VerifyCA
	// VerifyIdentity encrypts and checks the chain and the host name.
	VerifyIdentity
)

var modeNames = [...]string{
	Disabled:       "DISABLED",
	Preferred:      "PREFERRED",
	Required:       "REQUIRED",
	VerifyCA:       "VERIFY_CA",
	VerifyIdentity: "VERIFY_IDENTITY",
}

// String returns the MySQL name of the mode, e.g. "VERIFY_CA", or "" when unset.
func (m Mode) String() string {
	if m.valid() {
		return modeNames[m]
	}
	if m == 0 {
		return ""
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) valid() bool { return m >= Disabled && m <= VerifyIdentity }

// modeAliases maps normalised spellings (upper case, '-' as '_') to modes,
// MySQL's names first, then libpq's.
var modeAliases = map[string]Mode{
	"DISABLED":        Disabled,
	"PREFERRED":       Preferred,
	"REQUIRED":        Required,
	"VERIFY_CA":       VerifyCA,
	"VERIFY_IDENTITY": VerifyIdentity,
	"DISABLE":         Disabled,
	"PREFER":          Preferred,
	"REQUIRE":         Required,
	"VERIFY_FULL":     VerifyIdentity,
}

// ParseMode parses a mode name case-insensitively, with '-' or '_', and also
// accepts libpq's names (disable, prefer, require, verify-ca, verify-full).
// An unknown name is an ErrInvalidOption error that lists the valid ones.
func ParseMode(s string) (Mode, error) {
	key := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if m, ok := modeAliases[key]; ok {
		return m, nil
	}
	return 0, invalidOption("ssl-mode", "unknown SSL mode %q; valid modes are DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY (or libpq's disable, prefer, require, verify-ca, verify-full)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, so modes can come from
// flags, JSON or environment-backed config structs.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
