package settings

import (
	"strconv"
	"strings"
)

// Knob is a setting an error may tell the user to change. Errors name it
// the way the user set it (Source): a DSN parameter, an option function or
// a command flag.
type Knob uint8

// The knobs errors name.
const (
	Mode   Knob = iota + 1
	CA          // a CA file
	CAData      // a CA given as bytes (sslconn.WithCA); named as CA
	CAPassword
	Cert // ssl-cert and ssl-key
	KeyPassword
	ServerName
	TLSVersion
	Cipher
	CASystem
	RetryBudget
	HandshakeTimeout
	DeadPeer
	numKnobs
)

// Source is where a knob's value came from.
type Source uint8

// The sources. Options record Via, whose zero value means Option.
const (
	Unset  Source = iota
	Option        // an option function (sslconn.WithCAFile)
	Param         // a DSN parameter (ssl-ca)
	Driver        // the driver's own settings (a *tls.Config's RootCAs)
	Flag          // a command flag (--ca)
)

// knobNames are each knob's DSN parameter (the names internal/param reads)
// and option function; "" where there is none.
var knobNames = [numKnobs]struct{ param, option string }{
	Mode:             {"ssl-mode", "sslconn.WithMode"},
	CA:               {"ssl-ca", "sslconn.WithCAFile"},
	CAData:           {"ssl-ca", "sslconn.WithCA"},
	CAPassword:       {"ssl-ca-password", "sslconn.WithCAPassword"},
	Cert:             {"ssl-cert", "sslconn.WithClientCertFiles"},
	KeyPassword:      {"ssl-key-password", "sslconn.WithClientKeyPassword"},
	ServerName:       {"ssl-server-name", "sslconn.WithServerName"},
	TLSVersion:       {"tls-version", "sslconn.WithTLSVersions"},
	Cipher:           {"ssl-cipher", "sslconn.WithCipherSuites"},
	CASystem:         {"ssl-ca-system", "sslconn.WithSystemRoots"},
	RetryBudget:      {"", "sslconn.WithRetryBudget"},
	HandshakeTimeout: {"", "sslconn.WithHandshakeTimeout"},
	DeadPeer:         {"dead-peer-timeout", "sslconn.WithDeadPeerTimeout"},
}

// Sources records where each knob was set, and how to name knobs the user
// did not set. Options call Set; the adapters switch Via around the
// options a DSN's parameters and the driver's settings make, and the
// sslconn command around the options its flags make.
type Sources struct {
	Of  [numKnobs]Source
	Via Source // what Set records; Unset: Option
	// Flags are the command's flag names, by knob, when Via is Flag: knobs
	// the user did not set are then named by their flag, else by their DSN
	// parameter, else not at all.
	Flags map[Knob]string
}

// Set records that k was set now, by Via.
func (s *Sources) Set(k Knob) {
	switch k {
	case CA:
		s.Of[CAData] = Unset
	case CAData:
		s.Of[CA] = Unset
	}
	if s.Via == Unset {
		s.Of[k] = Option
		return
	}
	s.Of[k] = s.Via
}

// source is where k was set, or for a knob not set, the form to name it
// in: the command's flags under the command, else DSN parameters.
func (s *Sources) source(k Knob) Source {
	if src := s.Of[k]; src != Unset {
		return src
	}
	if s.Flags != nil {
		return Flag
	}
	return Param
}

// IsSet reports whether the user set k (by any means).
func (s *Sources) IsSet(k Knob) bool {
	return s.Of[k] != Unset || (k == CA && s.Of[CAData] != Unset)
}

// Name is how the user writes k: "ssl-ca", "sslconn.WithCAFile" or "--ca";
// "" when the form the user uses has no way to set it (the command has no
// retry budget).
func (s *Sources) Name(k Knob) string {
	if k == CA && s.Of[CAData] != Unset {
		k = CAData
	}
	n := knobNames[k]
	switch s.source(k) {
	case Option:
		return n.option
	case Flag:
		if f := s.Flags[k]; f != "" {
			return f
		}
		return n.param
	}
	if n.param == "" {
		return n.option
	}
	return n.param
}

// Setting is k set to value as the user writes it: ssl-mode=REQUIRED,
// sslconn.WithMode(sslconn.Required), --server-name=db.example.com. value
// is the DSN parameter's text (a mode's MySQL name).
func (s *Sources) Setting(k Knob, value string) string {
	name := s.Name(k)
	switch {
	case name == "":
		return ""
	case strings.HasPrefix(name, "sslconn."):
		return name + "(" + goValue(k, value) + ")"
	}
	return name + "=" + value
}

// goValue is value as an option function's argument.
func goValue(k Knob, value string) string {
	if k == Mode {
		var b strings.Builder
		b.WriteString("sslconn.")
		for _, w := range strings.Split(strings.ToLower(value), "_") {
			if w == "ca" {
				b.WriteString("CA")
				continue
			}
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
		return b.String()
	}
	return strconv.Quote(value)
}
