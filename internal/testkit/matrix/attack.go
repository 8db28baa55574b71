package matrix

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/mitm"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

// Target is one engine as the attack tests see it.
type Target struct {
	Engine mitm.Engine
	// Upstream is a real server with TLS optional (S1); for Redis and
	// MongoDB, its TLS port.
	Upstream    string
	UpstreamTLS bool
	Certs       *testenv.Certs
	// Connect connects to addr in mode, verifying against Certs.CA, sends
	// one command carrying marker, and closes everything it opened. nil
	// means the marker's round trip succeeded.
	Connect func(ctx context.Context, addr string, mode sslconn.Mode, marker string, opts ...sslconn.Option) error
	// Wire is how marker looks on the wire (TDS: UTF-16); nil: as is.
	Wire func(marker string) []byte
	// Password is the one Connect logs in with; empty for a server without
	// authentication (FerretDB here).
	Password string
	// WirePassword is how Password looks in a plaintext login (TDS's
	// LOGIN7: obfuscated UTF-16); nil: as is.
	WirePassword func(password string) []byte
	// PlainLoginShowsPassword: a login without TLS carries the password
	// readably (Redis AUTH, a TDS LOGIN7 after ENCRYPT_NOT_SUP), the
	// remainder the contract states per engine. Otherwise the password
	// never crosses the wire, whatever the mode and the attack (MySQL: no
	// cleartext password after a PREFERRED fallback).
	PlainLoginShowsPassword bool
	// DisabledStall, if set, is what bounds a DISABLED connect to a server
	// that never answers, when the driver's own timeouts do instead of the
	// handshake timeout and the retry budget (RunHostile).
	DisabledStall time.Duration
}

// ErrNone (no error) marks a cell that connects while the attacker reads nothing:
// a passive eavesdropper against a mode that encrypts.
var ErrNone = errors.New("connected, and the attacker read nothing")

// ErrAny stands for "some error" in AttackWant, where the error's kind
// depends on how a cut connection looks to the driver.
var ErrAny = errors.New("any error")

// AttackWant is the table docs/security.md states: the
// error each mode must end in under each attack, or nil where the mode
// connects and the attacker reads the session (what the contract does not
// promise to prevent).
func AttackWant() map[mitm.Attack]map[sslconn.Mode]error {
	row := func(d, p, r, ca, id error) map[sslconn.Mode]error {
		return map[sslconn.Mode]error{sslconn.Disabled: d, sslconn.Preferred: p, sslconn.Required: r, sslconn.VerifyCA: ca, sslconn.VerifyIdentity: id}
	}
	noTLS, version := sslconn.ErrServerNoTLS, sslconn.ErrTLSVersion
	return map[mitm.Attack]map[sslconn.Mode]error{
		mitm.Relay:        {sslconn.Preferred: ErrNone, sslconn.Required: ErrNone, sslconn.VerifyCA: ErrNone, sslconn.VerifyIdentity: ErrNone},
		mitm.StripTLS:     row(nil, nil, noTLS, noTLS, noTLS),
		mitm.ForeignCA:    row(nil, nil, nil, sslconn.ErrUnknownAuthority, sslconn.ErrUnknownAuthority),
		mitm.OtherHost:    row(nil, nil, nil, nil, sslconn.ErrHostnameMismatch),
		mitm.TLS10:        row(nil, version, version, version, version),
		mitm.CutHandshake: {sslconn.Preferred: ErrAny, sslconn.Required: ErrAny, sslconn.VerifyCA: ErrAny, sslconn.VerifyIdentity: ErrAny},
	}
}

func (tg *Target) wire(marker string) []byte {
	if tg.Wire != nil {
		return tg.Wire(marker)
	}
	return []byte(marker)
}

// Exposed is what a proxy's records show of one marker and one password.
type Exposed struct {
	// MarkerOnWire, PasswordOnWire: in plaintext in the bytes the client
	// sent (mitm.Proxy.Wire); a TLS session shows only records.
	MarkerOnWire, PasswordOnWire bool
	// MarkerRead: the attacker read the marker, on the wire or inside a
	// TLS session the client accepted from the proxy (mitm.Proxy.Seen).
	MarkerRead bool
	// PasswordRead: the attacker read the password, on the wire or inside
	// a TLS session it terminated (an impostor the mode did not refuse).
	PasswordRead bool
}

// Exposure reports what p recorded of marker and password (as they look
// on the wire). It fails t if p recorded less than the client sent.
func Exposure(t testing.TB, p *mitm.Proxy, marker, password []byte) Exposed {
	t.Helper()
	if n := p.Dropped(); n > 0 {
		t.Fatalf("the proxy dropped %d bytes of its records: the check would be blind", n)
	}
	wire := p.Wire()
	return Exposed{
		MarkerOnWire:   bytes.Contains(wire, marker),
		PasswordOnWire: len(password) > 0 && bytes.Contains(wire, password),
		MarkerRead:     bytes.Contains(p.Seen(), marker),
		PasswordRead:   len(password) > 0 && bytes.Contains(p.Seen(), password),
	}
}

func (tg *Target) wirePassword() []byte {
	switch {
	case tg.Password == "":
		return nil
	case tg.WirePassword != nil:
		return tg.WirePassword(tg.Password)
	}
	return []byte(tg.Password)
}

func (tg *Target) proxy(t *testing.T, a mitm.Attack) *mitm.Proxy {
	t.Helper()
	var cert *tls.Certificate
	pair := map[mitm.Attack]testenv.Pair{mitm.ForeignCA: tg.Certs.MITM, mitm.OtherHost: tg.Certs.OtherHost, mitm.TLS10: tg.Certs.SAN,
		mitm.LongChain: tg.Certs.SAN, mitm.HugeChain: tg.Certs.SAN}
	if p, ok := pair[a]; ok {
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		// A chain padded with copies of the CA: ~170 KiB, or ~450 KiB,
		// over crypto/tls's 256 KiB limit for a certificate message.
		copies := map[mitm.Attack]int{mitm.LongChain: 150, mitm.HugeChain: 400}[a]
		if copies > 0 {
			ca, err := sslconn.ReadCAChain(tg.Certs.CA, "")
			if err != nil {
				t.Fatal(err)
			}
			for range copies {
				c.Certificate = append(c.Certificate, ca[0].Raw)
			}
		}
		cert = &c
	}
	p, err := mitm.Start(mitm.Config{Engine: tg.Engine, Attack: a, Upstream: tg.Upstream, UpstreamTLS: tg.UpstreamTLS, Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// RunAttacks puts the proxy between client and server for every attack and
// mode of AttackWant. The proxy records every byte the client sends, and
// every cell checks what crossed the wire in plaintext. A cell that must
// fail fails with its sentinel, and neither the marker nor the password
// crossed, nor did the client accept a TLS session from the attacker:
// REQUIRED and above never continue in plaintext, the verifying modes never
// accept a foreign certificate, and a handshake that started never falls
// back. A passive relay of an encrypting mode sees TLS records only: no
// marker, no password (a session that encrypted only its login would show
// its queries). A cell that connects is the contract's stated limit
// (DISABLED, PREFERRED against an active attacker, REQUIRED without
// verification, VERIFY_CA for another host's certificate), and the test
// shows the attacker reads it; its password crosses in plaintext only where
// the session is plaintext and the engine's login carries it
// (PlainLoginShowsPassword), and is then seen, which proves the check can
// see it. After each cell no connection through the proxy is left open.
func RunAttacks(t *testing.T, tg Target) {
	want := AttackWant()
	for _, a := range []mitm.Attack{mitm.Relay, mitm.StripTLS, mitm.ForeignCA, mitm.OtherHost, mitm.TLS10, mitm.CutHandshake} {
		t.Run(a.String(), func(t *testing.T) {
			p := tg.proxy(t, a)
			for _, mode := range core.Modes {
				w, ok := want[a][mode]
				if !ok {
					continue
				}
				t.Run(mode.String(), func(t *testing.T) {
					p.Reset()
					marker := "marker-" + mode.String() + "-" + a.String()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					err := tg.Connect(ctx, p.Addr(), mode, marker, sslconn.WithRetryBudget(-1), sslconn.WithHandshakeTimeout(3*time.Second))
					ex := Exposure(t, p, tg.wire(marker), tg.wirePassword())
					switch {
					case w == ErrNone:
						if err != nil {
							t.Fatalf("want connected, got %v", err)
						}
						if ex.MarkerOnWire || ex.MarkerRead || p.Intercepted() > 0 {
							t.Errorf("a passive relay read the session: the marker crossed in plaintext")
						}
						if ex.PasswordOnWire {
							t.Errorf("a passive relay read the password: it crossed in plaintext")
						}
					case w == nil:
						if err != nil {
							t.Fatalf("want connected, got %v", err)
						}
						if !ex.MarkerRead {
							t.Errorf("connected, yet the attacker did not read the marker: the test proxy is not in the path")
						}
						plain := mode == sslconn.Disabled || (mode == sslconn.Preferred && a == mitm.StripTLS)
						if ex.MarkerOnWire != plain {
							t.Errorf("marker in plaintext on the wire: %t, want %t (a plaintext session: %t)", ex.MarkerOnWire, plain, plain)
						}
						if wantPW := plain && tg.PlainLoginShowsPassword && tg.Password != ""; ex.PasswordOnWire != wantPW {
							t.Errorf("password in plaintext on the wire: %t, want %t", ex.PasswordOnWire, wantPW)
						}
						// What an impostor the mode accepted reads inside
						// its TLS session: the login as the engine sends it
						// (docs/security.md's table).
						if wantPW := tg.PlainLoginShowsPassword && tg.Password != ""; ex.PasswordRead != wantPW {
							t.Errorf("the attacker read the password: %t, want %t", ex.PasswordRead, wantPW)
						}
					default:
						if err == nil {
							t.Fatalf("connected through %s; want %v", a, w)
						}
						if w != ErrAny && !errors.Is(err, w) {
							t.Fatalf("got %v (%s), want %v", err, Kind(err), w)
						}
						if ex.MarkerOnWire || ex.MarkerRead {
							t.Errorf("the attacker read the marker before the error")
						}
						if ex.PasswordOnWire || ex.PasswordRead {
							t.Errorf("the attacker read the password before the error")
						}
						if n := p.Intercepted(); n > 0 {
							t.Errorf("the client accepted %d TLS session(s) from the attacker", n)
						}
					}
					WaitNoConns(t, p)
				})
			}
		})
	}
}

// WaitNoConns fails unless every connection through p is closed soon.
func WaitNoConns(t testing.TB, p *mitm.Proxy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Active() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) left open after Close", p.Active())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Bounds of RunHostile, the README's claims with room for a machine twice
// as slow (measured on a loaded two-core machine, four engines: a flood
// costs a connect, five attempts, 516-850 KiB of allocations, 776-1048 KiB
// under -race; a long chain connects in 4-91 ms, 14-95 ms under -race).
const (
	// hostileTimeout and hostileBudget are the handshake timeout and the
	// retry budget each connect gets.
	hostileTimeout = time.Second
	hostileBudget  = 2 * time.Second
	// hostileSlack is scheduling slack over the timers' own bound (the
	// budget, plus one handshake timeout begun just before it ran out):
	// a PREFERRED attempt also waits for its plaintext question, and a
	// loaded machine (two test runs side by side) was seen 89 ms past 1 s.
	hostileSlack = 2 * time.Second
	// MaxFloodAlloc is the README's "under 1 MiB of allocations" while
	// flooded, for a whole connect and its retries.
	MaxFloodAlloc = 1 << 20
	// MaxLongChain is the README's "connects in milliseconds" for a chain
	// of 150 certificates.
	MaxLongChain = 500 * time.Millisecond
	// maxChainAlloc bounds a long or huge chain's allocations, both sides
	// (the proxy marshals the chain in this process): measured 2-7 MiB
	// for a long chain, 16-21 MiB for a huge one over five attempts.
	maxChainAlloc = 32 << 20
)

// RunHostile points every mode at a server that never answers (Stall), at
// one that answers the TLS start with an endless handshake message (Flood),
// and at ones sending a certificate chain over crypto/tls's limit
// (HugeChain) and just under it (LongChain): each connect must end within
// the handshake timeout and its retries, with an error except for the long
// chain, which connects in milliseconds, and the client's memory must not
// grow with what the server sends (under 1 MiB while flooded).
func RunHostile(t *testing.T, tg Target) {
	for _, a := range []mitm.Attack{mitm.Stall, mitm.Flood, mitm.HugeChain, mitm.LongChain} {
		t.Run(a.String(), func(t *testing.T) {
			p := tg.proxy(t, a)
			for _, mode := range core.Modes {
				if a != mitm.Stall && mode == sslconn.Disabled {
					continue // nothing to attack: no TLS handshake
				}
				t.Run(mode.String(), func(t *testing.T) {
					p.Reset()
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					start := time.Now()
					// No deadline of our own: the library must bound the wait.
					err := tg.Connect(context.Background(), p.Addr(), mode, "marker",
						sslconn.WithHandshakeTimeout(hostileTimeout), sslconn.WithRetryBudget(hostileBudget))
					took := time.Since(start)
					runtime.ReadMemStats(&after)
					// A long chain under the limit is only work: the
					// connection succeeds (every mode: it is the right
					// certificate), within the same bounds.
					// The intercepting proxy also answers plaintext (it
					// reads along to the server), and answers it sooner
					// than it sends a huge chain: PREFERRED, which offers
					// no defence against an active attacker, may take the
					// plaintext answer (Redis, MongoDB: see core's
					// dialPreferred).
					plainOK := a == mitm.HugeChain && mode == sslconn.Preferred
					if connected := err == nil; connected != (a == mitm.LongChain) && !(plainOK && connected) {
						t.Fatalf("connected %t: %v", connected, err)
					}
					limit := hostileBudget + hostileTimeout + hostileSlack
					if a == mitm.Stall && mode == sslconn.Disabled && tg.DisabledStall > 0 {
						limit = tg.DisabledStall + hostileSlack
					}
					if took > limit {
						t.Errorf("took %v, over %v: the handshake timeout and the budget did not bound it (%v)", took, limit, err)
					}
					grew := after.TotalAlloc - before.TotalAlloc
					switch a {
					case mitm.Flood:
						t.Logf("flood: server sent %d KiB, client allocated %d KiB, %v: %v", p.Flooded()>>10, grew>>10, took.Round(time.Millisecond), err)
						limit := uint64(MaxFloodAlloc)
						if raceEnabled {
							limit += limit / 2 // sync.Pool keeps nothing under -race: measured up to 1048 KiB
						}
						if grew > limit {
							t.Errorf("allocated %d KiB while flooded, over %d KiB", grew>>10, limit>>10)
						}
					case mitm.HugeChain, mitm.LongChain:
						t.Logf("%s: allocated %d KiB (both sides), %v: %v", a, grew>>10, took.Round(time.Millisecond), err)
						if grew > maxChainAlloc {
							t.Errorf("allocated %d MiB for one %s", grew>>20, a)
						}
						if a == mitm.LongChain && took > MaxLongChain {
							t.Errorf("a chain of 150 certificates took %v to connect, over %v", took, MaxLongChain)
						}
					default:
						t.Logf("%s: %v: %v", a, took.Round(time.Millisecond), err)
					}
					WaitNoConns(t, p)
				})
			}
		})
	}
}

// RunNoLeaks connects n clients at once through a relaying proxy, runs
// work on each, closes them, and fails if a goroutine or a connection
// outlives Close.
func RunNoLeaks(t *testing.T, tg Target, n int, open func(ctx context.Context, addr string) (work func(context.Context) error, closeFn func() error, err error)) {
	ignore := goleak.IgnoreCurrent()
	p := tg.proxy(t, mitm.Relay)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work, closeFn, err := open(ctx, p.Addr())
			if err != nil {
				errs[i] = err
				return
			}
			defer func() {
				if err := closeFn(); err != nil && errs[i] == nil {
					errs[i] = err
				}
			}()
			for range 5 {
				if err := work(ctx); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	WaitNoConns(t, p)
	p.Close()
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
}
