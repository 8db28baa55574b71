package core

import (
	"context"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

// maxKnown bounds each addrBook: past it, the address used least recently
// is forgotten (and found out again if dialed).
const maxKnown = 4096

// process.book is what PREFERRED knows of the addresses dialed through the
// default dialer, shared by every Config of the process: a new client of
// an address another client has dialed starts where that one is, at the
// bare driver's cost. What it holds is about the server, never about a
// client's TLS settings: whether the address answers TLS at all.

// addrBook is what PREFERRED knows about addresses: those that answered
// in plaintext and not TLS (connections there skip the TLS attempt), and
// those that answered TLS (connections there skip the plaintext probe, so
// a server that also answers plaintext is never taken for plaintext-only
// because its TLS answer was late). It is a hint, not a pin: an address
// known to serve plaintext is asked again for TLS every recheckEvery, off
// the request path, and a refused dial forgets it. The zero value is
// empty and ready.
type addrBook struct {
	mu sync.Mutex
	m  map[string]*plainAddr
}

type plainAddr struct {
	plain    bool      // plaintext only; else it answered TLS
	checked  time.Time // the last TLS attempt there
	used     time.Time // the last look-up, for eviction
	checking bool
	// answerIn is how long the last TLS answer took there, from the start
	// of the attempt to the server's first byte: the round trips of a
	// distant server, which the probe's wait must not take for a late
	// answer.
	answerIn time.Duration
}

func (b *addrBook) get(addr string) (known, plain bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.m[addr]
	if ok {
		a.used = time.Now()
	}
	return ok, ok && a.plain
}

func (b *addrBook) set(addr string, plain bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*plainAddr{}
	}
	if a, ok := b.m[addr]; ok {
		if a.plain != plain {
			a.plain, a.checked, a.checking = plain, time.Now(), false
		}
		return
	}
	if len(b.m) >= maxKnown {
		b.evict()
	}
	now := time.Now()
	b.m[addr] = &plainAddr{plain: plain, checked: now, used: now}
}

// evict forgets the address looked up least recently. It scans the book:
// it runs only when a new address comes to a full one.
func (b *addrBook) evict() {
	var (
		oldest string
		at     time.Time
	)
	for addr, a := range b.m {
		if oldest == "" || a.used.Before(at) {
			oldest, at = addr, a.used
		}
	}
	delete(b.m, oldest)
}

func (b *addrBook) learn(addr string)    { b.set(addr, true) }
func (b *addrBook) learnTLS(addr string) { b.set(addr, false) }

// noteAnswer records how long a TLS answer took at an address that
// answered TLS.
func (b *addrBook) noteAnswer(addr string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.m[addr]; ok && !a.plain {
		a.answerIn = d
	}
}

// probeAfter is how long PREFERRED waits for a TLS answer at an address
// that answered TLS before, before it asks the plaintext question too:
// tlsLate, or twice the last answer's time from a distant server.
func (b *addrBook) probeAfter(addr string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := tlsLate
	if a, ok := b.m[addr]; ok {
		d = max(d, 2*a.answerIn)
	}
	return d
}

func (b *addrBook) forget(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, addr)
}

// has reports whether the book knows addr at all.
func (b *addrBook) has(addr string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.m[addr]
	return ok
}

// due reports whether an address known to serve plaintext should be asked
// again for TLS (now: at once; else once recheckEvery has passed since the
// last check), and if so marks the check as running: one at a time per
// address, whichever client dials it.
func (b *addrBook) due(addr string, now bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.m[addr]
	if !ok || !a.plain || a.checking || (!now && time.Since(a.checked) < recheckEvery) {
		return false
	}
	a.checking = true
	return true
}

func (b *addrBook) checked(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.m[addr]; ok {
		a.checking, a.checked = false, time.Now()
	}
}

// What a Config knows of addresses lives where its dials share it: the
// process's for dials through the default dialer, a WithDialer option's
// for dials through it (shared by the Configs given that option), and its
// own for dials through the driver's Dialer option, which may reach
// another server behind the same address, and for the database/sql
// engines' PREFERRED, whose connector cannot tell which dialer the driver
// uses.

// knowledge is what is learnt of the addresses dialed one way: PREFERRED's
// book and the watches of refusing ports.
type knowledge struct {
	book    addrBook
	accepts acceptWatches
}

// process is the knowledge of dials through the default dialer, shared by
// every Config of the process.
var process knowledge

// dialerShared is the knowledge c shares with the other Configs of its
// WithDialer option, or nil without one.
func (c *Config) dialerShared() *knowledge {
	sc := c.s.DialerScope
	if sc == nil {
		return nil
	}
	return sc.Get(func() any { return new(knowledge) }).(*knowledge)
}

// knowledgeOf is where a dial through dial learns and looks up; configs
// says dial is the Config's own (Config.Dialer). shared is false for a
// dialer of the driver's, which the Config's own checks may not reach the
// server through.
func (c *Config) knowledgeOf(dial sslconn.DialFunc, configs bool) (k *knowledge, shared bool) {
	if isNetDial(dial) {
		return &process, true
	}
	if configs {
		if sh := c.dialerShared(); sh != nil {
			return sh, true
		}
		return &c.own, true
	}
	return &c.own, false
}

// dialFor is the dial an attempt makes its TCP connection with: dial, or
// the Config's if nil. It notes how in ctx, for the retry loop (noteVia).
func (c *Config) dialFor(ctx context.Context, dial sslconn.DialFunc, network, addr string) (d sslconn.DialFunc, configs bool) {
	configs = dial == nil
	if configs {
		dial = c.Dialer()
	}
	c.noteVia(ctx, dial, configs, network, addr)
	return dial, configs
}

// learnTLS records that addr answers TLS now (a plaintext connection there
// was dropped, and a handshake answered), in whichever book knows it: that
// is where the connection was planned.
func (c *Config) learnTLS(addr string) {
	books := []*addrBook{&c.own.book, &process.book}
	if sh := c.dialerShared(); sh != nil {
		books = append(books, &sh.book)
	}
	for _, b := range books {
		if b.has(addr) {
			b.learnTLS(addr)
		}
	}
}

// netDialer is the default dialer (Config.Dialer without WithDialer). Its
// method value is recognised by its code (isNetDial), so that dials through
// it share the process's book, and dials through any other do not.
type netDialer struct{ d net.Dialer }

func (n *netDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := n.d.DialContext(ctx, network, addr)
	if err == nil {
		noteName(raw, addr)
	}
	return raw, err
}

// netDialCode is the code of every netDialer.dial method value.
var netDialCode = reflect.ValueOf((*netDialer)(nil).dial).Pointer()

func isNetDial(dial sslconn.DialFunc) bool {
	return dial != nil && reflect.ValueOf(dial).Pointer() == netDialCode
}

// ForgetPreferred forgets what PREFERRED learnt in this process about addr
// through the default dialer, as if no client had dialed it: for
// benchmarks of a first connection, and for tests that reuse a port.
func ForgetPreferred(addr string) { process.book.forget(addr) }
