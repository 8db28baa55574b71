package mongocore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// ContextDialer is the driver's options.ContextDialer, the same in v1 and v2.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Dialer is the ContextDialer the adapters install in the driver's options.
type Dialer struct {
	// Pkg is the adapter's name, for messages: mongossl or mongov1.
	Pkg string
	Cfg *core.Config
	// User is the ContextDialer set on the options before, which makes the
	// TCP connection unless sslconn.WithDialer was given; nil: the Config's.
	User ContextDialer
	// Revocation: check stapled OCSP responses in VERIFY_CA and
	// VERIFY_IDENTITY (tlsDisableCertificateRevocationCheck turns it off).
	Revocation bool
	// What Cfg was resolved from, for ConnectOptions with more options.
	// Spec holds passwords: the dialer prints as String says.
	Spec core.Spec
	Opts []sslconn.Option
	// Live watches the connections of a client made by ConnectOptions;
	// nil for options handed to the user.
	Live *Live
	// park holds Connect's preflight connections for the driver's
	// first dials (see Park); nil otherwise.
	park atomic.Pointer[Parking]
}

// NilOptions is ConnectOptions' error for nil options.
func NilOptions() error {
	return core.InvalidOption("options", "the *options.ClientOptions is nil", nil)
}

// InvalidOptions is the driver's refusal of options (err, from their
// Validate), as an ErrInvalidOption without the password pw.
func InvalidOptions(err error, pw string) error {
	return core.Redact(core.InvalidOption("options", "invalid client options", err), pw)
}

// FromOptions makes the dialer for the driver's options built in code, for
// the adapter pkg: tc and user are their TLSConfig and Dialer, pw their
// password, uri the URI the driver's ApplyURI read (GetURI; "" for none).
// Options from the adapter's ClientOptions (user is a *Dialer) keep their
// URI's settings, opts added; others map tc onto a mode, and read the
// shared ssl-* parameters in uri, which the driver keeps as unknown
// options and ignores, as ClientOptions would (opts win over them).
// Revocation is the previous dialer's, or on.
func FromOptions(pkg string, tc *tls.Config, user ContextDialer, pw, uri string, opts []sslconn.Option) (*Dialer, error) {
	if prev, ok := user.(*Dialer); ok {
		// Options from ClientOptions (or a copy made here): the TLS
		// settings are the dialer's.
		if tc != nil {
			return nil, core.InvalidOption("TLSConfig", "these options come from "+prev.Pkg+".ClientOptions, whose dialer does TLS: set TLS with the URI's parameters or sslconn options, not with TLSConfig", nil)
		}
		spec := prev.Spec
		spec.Secrets = append(append([]string(nil), spec.Secrets...), pw)
		d := &Dialer{Pkg: pkg, Cfg: prev.Cfg, User: prev.User, Revocation: prev.Revocation, Spec: spec, Opts: prev.Opts}
		if len(opts) == 0 {
			return d, nil
		}
		d.Opts = append(append([]sslconn.Option(nil), prev.Opts...), opts...)
		cfg, err := core.Resolve(spec, d.Opts...)
		if err != nil {
			return nil, err
		}
		d.Cfg = cfg
		return d, nil
	}
	spec := core.Spec{TLS: tc, Secrets: []string{pw}, Probe: PlainHello, Engine: "mongodb"}
	if uri != "" {
		params, err := uriParams(uri)
		if err != nil {
			return nil, core.Redact(err, pw)
		}
		spec.Params = params
	}
	cfg, err := core.Resolve(spec, opts...)
	if err != nil {
		return nil, err
	}
	return &Dialer{Pkg: pkg, Cfg: cfg, User: user, Revocation: true, Spec: spec, Opts: append([]sslconn.Option(nil), opts...)}, nil
}

// DialContext dials every host, seed or discovered from a replica set's
// hello, in the same mode, verified against the name it is reached by.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	park := d.park.Load()
	if c, err := park.take(network, addr); err != nil {
		return nil, err
	} else if c != nil {
		if d.Live != nil {
			d.Live.track(c.Conn, addr)
		}
		return c, nil
	}
	var raw sslconn.DialFunc
	if d.User != nil && d.Cfg.Settings().Dialer == nil {
		raw = d.User.DialContext
	}
	c, err := d.Cfg.Dial(ctx, network, addr, raw)
	if err != nil {
		return nil, err
	}
	if err := d.checkRevocation(c, addr); err != nil {
		c.Close()
		return nil, err
	}
	if err := park.track(c); err != nil {
		c.Close()
		return nil, err
	}
	if d.Live != nil {
		d.Live.track(c, addr)
	}
	return c, nil
}

// String describes the dialer without the passwords it keeps, so that
// printing the options (with %v, %+v or %#v) cannot leak them.
func (d *Dialer) String() string {
	return fmt.Sprintf("%s.dialer{%s user-dialer=%t revocation-check=%t}", d.Pkg, d.Cfg, d.User != nil, d.Revocation)
}

// GoString is String, for %#v.
func (d *Dialer) GoString() string { return d.String() }

// Preflight opens one connection to each seed in parallel, exchanges a
// hello on it and closes it, and succeeds as soon as one does: for a
// client whose driver does not dial at once (a load balancer's: no
// monitor), where Park's connection could wait in vain.
func Preflight(ctx context.Context, d *Dialer, hosts []string) error {
	if len(hosts) == 0 {
		return nil // mongodb+srv: the driver resolves the hosts
	}
	return preflight(ctx, hosts, func(ctx context.Context, h string) error { return hello(ctx, d, h) })
}

// preflight runs try on every seed in parallel and succeeds as soon as one
// does, cancelling the others; else it returns the first error.
func preflight(ctx context.Context, hosts []string, try func(ctx context.Context, host string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(hosts))
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := try(ctx, h)
			if err == nil {
				cancel()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(first, context.Canceled) {
			first = err
		}
	}
	return first
}

// hello opens one connection to host and exchanges a hello with it: a
// server that rejects the connection only once it sees the first message
// (a TLS port reading plaintext, a TLS 1.3 server wanting a client
// certificate) does so here, where the error is still ours to explain. It
// dials through d, as the driver will: the user's dialer, the OCSP check.
func hello(ctx context.Context, d *Dialer, host string) error {
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(d.Cfg.Settings().HandshakeTimeout))
	}
	if _, err := c.Write(helloMsg); err != nil {
		return err
	}
	var header [16]byte
	if _, err := io.ReadFull(c, header[:]); err != nil {
		return err
	}
	return nil
}

// NotOurs is Verify's error for a client whose connections the adapter pkg
// did not make.
func NotOurs(pkg string) error {
	return fmt.Errorf("%[1]s: the client's connection was not made by %[1]s (use %[1]s.Connect, ConnectOptions or ClientOptions)", pkg)
}
