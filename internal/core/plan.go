package core

import (
	"errors"

	"github.com/sslconn/sslconn/sslconn"
)

// plan is one new connection's attempts, as data: the mode of the first,
// and, under PREFERRED, what each attempt showed about the address, which
// decides the next and is remembered for later connections (plainAddrs).
//
// PREFERRED's plan at an address
//
//	not known, or known to answer TLS:  TLS (PREFERRED's tls.Config), then plaintext on ErrServerNoTLS
//	known to serve plaintext only:      plaintext, then TLS on ErrServerRequiresTLS
//
// and, at an address known to serve plaintext only, a TLS attempt off the
// request path every recheckEvery (recheck). Every other mode is one
// attempt in that mode, and learns nothing. Connector.Connect runs it for
// the database/sql adapters, dialPreferred for the engines where TLS wraps
// the whole connection.
//
// How an engine tells "no TLS here" is its adapter's translation into the
// typed errors: SQL Server's ENCRYPT_NOT_SUP, a ClientHello met with
// silence, plaintext or a close (the race in preferred.go). MySQL's driver
// makes both attempts in one connection (AllowFallbackToPlaintext: the
// greeting's CLIENT_SSL decides), which reports as the plaintext attempt.
type plan struct {
	c         *Config
	addr      string
	preferred bool
	first     sslconn.Mode
	tlsKnown  bool // the address answered TLS before
	recheck   bool // plaintext only, and due for a TLS attempt off the request path
	tries     int
}

// maxTries bounds a plan: TLS, plaintext, and TLS again, for a server
// restarted with other settings between two attempts.
const maxTries = 3

func (c *Config) plan(mode sslconn.Mode, addr string) *plan {
	p := &plan{c: c, addr: addr, first: mode, preferred: mode == sslconn.Preferred}
	if !p.preferred {
		return p
	}
	known, plain := c.plain.get(addr)
	p.tlsKnown = known && !plain
	if plain {
		p.first, p.recheck = sslconn.Disabled, c.plain.due(addr)
	}
	return p
}

// next records what the attempt in mode showed (err, nil on success) and
// returns the mode of the next attempt, or 0 when err is the outcome.
func (p *plan) next(mode sslconn.Mode, err error) sslconn.Mode {
	p.tries++
	again := p.tries < maxTries
	switch {
	case !p.preferred:
	case mode == sslconn.Disabled && err == nil:
	case mode == sslconn.Disabled:
		// Down, perhaps restarting with other settings, or asking for
		// TLS now: find out anew; the recheck is moot.
		p.c.plain.forget(p.addr)
		p.recheck = false
		if again && errors.Is(err, sslconn.ErrServerRequiresTLS) {
			return sslconn.Preferred
		}
	case err == nil || isTLSAnswer(err):
		p.c.plain.learnTLS(p.addr)
	case errors.Is(err, sslconn.ErrServerNoTLS):
		p.c.plain.learn(p.addr)
		p.c.s.Logger.Debug("sslconn: server does not speak TLS here; PREFERRED falls back to plaintext", "addr", p.addr)
		if again {
			return sslconn.Disabled
		}
	}
	return 0
}

// rechecked records a TLS attempt made off the request path (err: its
// outcome): a server that answered it in TLS is no longer taken to serve
// plaintext only.
func (c *Config) rechecked(addr string, err error) {
	if err == nil || isTLSAnswer(err) {
		c.plain.learnTLS(addr)
		c.s.Logger.Debug("sslconn: server now answers TLS; PREFERRED encrypts new connections", "addr", addr)
		return
	}
	c.plain.checked(addr)
}

// runRecheck runs check, a TLS attempt at the address, in the background
// when the plan found it due and this connection went plaintext.
func (p *plan) runRecheck(check func() error) {
	if !p.recheck || check == nil {
		return
	}
	p.recheck = false
	go func() { p.c.rechecked(p.addr, check()) }()
}
