package core

import (
	"errors"

	"github.com/sslconn/sslconn/sslconn"
)

// plan is one new connection's attempts, as data: the mode of the first,
// and, under PREFERRED, what each attempt showed about the address, which
// decides the next and is remembered for later connections (an addrBook:
// the process's for dials through the default dialer, shared by every
// client, else the Config's own).
//
// PREFERRED's plan at an address
//
//	not known, or known to answer TLS:  TLS (PREFERRED's tls.Config), then plaintext on ErrServerNoTLS
//	known to serve plaintext only:      plaintext, then TLS on ErrServerRequiresTLS
//
// and, at an address known to serve plaintext only, a TLS attempt off the
// request path every recheckEvery (recheck), and one at once when the
// address was found plaintext by a close at PREFERRED's FIN (recheckNow;
// see dialPreferred). Every other mode is one
// attempt in that mode, and learns nothing. Connector.Connect runs it for
// the database/sql adapters, dialPreferred for the engines where TLS wraps
// the whole connection.
//
// How an engine tells "no TLS here" is its adapter's translation into the
// typed errors: SQL Server's ENCRYPT_NOT_SUP, a ClientHello met with
// plaintext or a close, on the TLS connection (preferred.go). MySQL's driver
// makes both attempts in one connection (AllowFallbackToPlaintext: the
// greeting's CLIENT_SSL decides), which reports as the plaintext attempt.
type plan struct {
	c         *Config
	book      *addrBook // what is known of addresses, and where to learn
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

// plan is a database/sql connector's plan: it learns in the Config's own
// book, since the driver may dial through a dialer of its own.
func (c *Config) plan(mode sslconn.Mode, addr string) *plan {
	return c.planIn(&c.own.book, mode, addr)
}

func (c *Config) planIn(book *addrBook, mode sslconn.Mode, addr string) *plan {
	p := &plan{c: c, book: book, addr: addr, first: mode, preferred: mode == sslconn.Preferred}
	if !p.preferred {
		return p
	}
	known, plain := book.get(addr)
	p.tlsKnown = known && !plain
	if plain {
		p.first, p.recheck = sslconn.Disabled, book.due(addr, false)
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
		p.book.forget(p.addr)
		p.recheck = false
		if again && errors.Is(err, sslconn.ErrServerRequiresTLS) {
			return sslconn.Preferred
		}
	case err == nil || isTLSAnswer(err):
		p.book.learnTLS(p.addr)
	case errors.Is(err, sslconn.ErrServerNoTLS):
		p.book.learn(p.addr)
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
func (p *plan) rechecked(err error) {
	if err == nil || isTLSAnswer(err) {
		p.book.learnTLS(p.addr)
		p.c.s.Logger.Debug("sslconn: server now answers TLS; PREFERRED encrypts new connections", "addr", p.addr)
		return
	}
	p.book.checked(p.addr)
}

// runRecheck runs check, a TLS attempt at the address, in the background
// when the plan found it due and this connection went plaintext.
func (p *plan) runRecheck(check func() error) {
	if !p.recheck || check == nil {
		return
	}
	p.recheck = false
	go func() { p.rechecked(check()) }()
}

// recheckNow runs check, a TLS attempt at the address, in the background
// now, unless one is running.
func (p *plan) recheckNow(check func() error) {
	if p.book.due(p.addr, true) {
		go func() { p.rechecked(check()) }()
	}
}
