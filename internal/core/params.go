package core

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"

	"github.com/sslconn/sslconn/internal/param"
	isettings "github.com/sslconn/sslconn/internal/settings"
	"github.com/sslconn/sslconn/sslconn"
)

// Native is what a driver's own settings say about TLS, in the adapter's
// reading: the mode they map onto, how the user wrote the deciding setting
// (for errors), and the options they carry (CA file, client certificate,
// server name, versions).
type Native struct {
	Mode    sslconn.Mode // 0: the driver's settings say nothing about TLS
	Setting string       // e.g. "tls=skip-verify", "encrypt=true&TrustServerCertificate=true"
	Options []sslconn.Option
}

// Spec is everything a DSN or driver config says, as an adapter read it.
type Spec struct {
	Native Native
	// TLS is a *tls.Config the user set on the driver's config (its
	// TLSConfig field), read with NativeTLS when Native says nothing.
	TLS *tls.Config
	// Params are the shared ssl-* parameters the DSN carried, in any spelling.
	Params url.Values
	// Secrets are kept out of every error text (the DSN's passwords).
	Secrets []string
	// Probe is the engine's plaintext question for PREFERRED; nil for
	// engines that negotiate TLS in their protocol. It asks a server, over
	// a new plaintext connection, the cheapest question its protocol has
	// (Redis: PING; MongoDB: hello), and returns nil when the answer shows
	// that the server speaks plaintext there; an error reply counts as an
	// answer. It must leave conn at a message boundary: a probed connection
	// is handed to the driver. It runs under a deadline set on conn.
	Probe func(ctx context.Context, conn net.Conn) error
	// Engine is the engine's db.system.name for telemetry: "mysql",
	// "redis", "mongodb", "microsoft.sql_server".
	Engine string
}

// Resolve builds the Config for spec and the caller's options (a zero Spec:
// the options alone): the driver's own options first, then the DSN's ssl-*
// parameters, then opts, so a later one wins. The mode is the explicit one (ssl-mode or WithMode), else the
// driver's setting, else VERIFY_CA when a CA is given, else PREFERRED. An
// explicit mode refines the driver's setting and is an ErrInvalidOption
// error, naming both, only when they contradict: the driver turns TLS off
// and the mode encrypts, the driver turns TLS on and the mode is DISABLED,
// or the driver turns verification off and the mode verifies.
func Resolve(spec Spec, opts ...sslconn.Option) (*Config, error) {
	params, err := param.Options(spec.Params)
	if err != nil {
		return nil, Redact(err, spec.Secrets...)
	}
	if spec.TLS != nil && spec.Native.Mode == 0 {
		n, err := NativeTLS(spec.TLS, "TLSConfig")
		if err != nil {
			return nil, err
		}
		spec.Native = n
	}
	// Each group records its source, so errors name a setting as it was made.
	all := append([]sslconn.Option{withEngine(spec.Engine), via(isettings.Driver)}, spec.Native.Options...)
	if spec.Native.Mode != 0 {
		all = append(all, withDefaultMode(spec.Native.Mode))
	}
	all = append(append(all, via(isettings.Param)), params...)
	all = append(append(all, via(isettings.Option)), opts...)
	cfg, err := newConfig(all...)
	if err != nil {
		return nil, Redact(err, spec.Secrets...)
	}
	if err := conflict(spec.Native, cfg.s.Mode, &cfg.s.Sources); err != nil {
		return nil, err
	}
	cfg.probe = spec.Probe
	return cfg, nil
}

// conflict is the one conflict rule between a driver's TLS setting and an
// explicit mode; nil when they agree or one is unset.
func conflict(native Native, explicit sslconn.Mode, names *isettings.Sources) error {
	n := native.Mode
	if n == 0 || explicit == 0 {
		return nil
	}
	var says, but string
	switch {
	case n == sslconn.Disabled && explicit != sslconn.Disabled:
		says, but = "turns TLS off", "would encrypt"
	case n >= sslconn.Required && explicit == sslconn.Disabled:
		says, but = "turns TLS on", "would not encrypt"
	case n == sslconn.Required && explicit >= sslconn.VerifyCA:
		says, but = "turns certificate verification off", "verifies"
	default:
		return nil
	}
	return InvalidOption(names.Name(isettings.Mode), fmt.Sprintf("the driver's setting %s %s but %s %s; drop one of them", native.Setting, says, names.Setting(isettings.Mode, explicit.String()), but), nil)
}

// resolvers hold each adapter's reading of its DSNs, registered by the
// adapter's init, so that the sslconn command reads a DSN exactly as the
// adapter that will connect with it does, and in no other way.
var resolvers sync.Map // engine name -> func(string, ...sslconn.Option) (*Resolved, error)

// Resolved is an adapter's reading of a DSN, without connecting: the
// Config its connections use and the addresses it dials (host:port, or a
// Unix socket's path), the one dialled first first.
type Resolved struct {
	Config *Config
	Addrs  []string
}

// RegisterResolver records how an adapter reads a DSN and options.
func RegisterResolver(engine string, f func(dsn string, opts ...sslconn.Option) (*Resolved, error)) {
	resolvers.Store(engine, f)
}

// ResolveDSN reads dsn as the engine's adapter does, without connecting.
func ResolveDSN(engine, dsn string, opts ...sslconn.Option) (*Resolved, error) {
	f, ok := resolvers.Load(engine)
	if !ok {
		panic("BUG: no resolver registered for " + engine)
	}
	return f.(func(string, ...sslconn.Option) (*Resolved, error))(dsn, opts...)
}
