package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

const (
	// tlsGrace is how long PREFERRED still waits for a TLS answer once the
	// plaintext probe has been answered. A server that serves TLS and
	// plaintext on one port (managed endpoints, mongod's allowTLS) answers
	// both; its ServerHello costs it a key exchange and a signature, about
	// a millisecond (measured: Redis 7, 0.7-1.1 ms on loopback), which the
	// plaintext answer does not.
	tlsGrace = 2 * time.Millisecond
	// plainGrace is how long past its plaintext answer a server still has
	// to answer the ClientHello: a loaded machine (a server process
	// starved, two test runs side by side) was seen 2-3 ms late with a
	// protocol_version alert, which must never be taken for "no TLS".
	plainGrace = 5 * time.Millisecond
	// tlsLate is when PREFERRED starts the plaintext probe at an address
	// that has answered TLS before.
	tlsLate = 50 * time.Millisecond
)

var errTLSAnswered = errors.New("the server answered TLS: no probe")

// errPlainFirst is what the race learns when the plaintext question is
// answered and the ClientHello is not, within the grace.
var errPlainFirst = fmt.Errorf("%w: the server answered plaintext, and not the TLS ClientHello within the grace", sslconn.ErrServerNoTLS)

// recheckEvery is how often an address known to serve plaintext is asked
// again, off the request path, whether it speaks TLS now (the "enable SSL"
// change behind a proxy that accepts both); a variable for tests.
var recheckEvery = 5 * time.Second

// plainAddrs is what a Config knows about the addresses it dialed under
// PREFERRED: those that answered in plaintext and not TLS (connections
// there skip the TLS attempt), and those that answered TLS (connections
// there skip the plaintext probe, and a server that also answers plaintext
// is never taken for plaintext-only by a race it lost under load).
type plainAddrs struct {
	mu sync.Mutex
	m  map[string]*plainAddr
}

type plainAddr struct {
	plain    bool      // plaintext only; else it answered TLS
	checked  time.Time // the last TLS attempt there
	checking bool
}

func (p *plainAddrs) get(addr string) (known, plain bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.m[addr]
	return ok, ok && a.plain
}

func (p *plainAddrs) set(addr string, plain bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*plainAddr{}
	}
	if a, ok := p.m[addr]; ok && a.plain == plain {
		return
	}
	p.m[addr] = &plainAddr{plain: plain, checked: time.Now()}
}

func (p *plainAddrs) learn(addr string)    { p.set(addr, true) }
func (p *plainAddrs) learnTLS(addr string) { p.set(addr, false) }

func (p *plainAddrs) forget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, addr)
}

// due reports whether an address known to serve plaintext should be asked
// again for TLS, and if so marks the check as running.
func (p *plainAddrs) due(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.m[addr]
	if !ok || !a.plain || a.checking || time.Since(a.checked) < recheckEvery {
		return false
	}
	a.checking = true
	return true
}

func (p *plainAddrs) checked(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.m[addr]; ok {
		a.checking, a.checked = false, time.Now()
	}
}

// dialPreferred is one PREFERRED connection attempt.
//
// At an address known to serve plaintext it dials plaintext, as a bare
// driver would, and now and then asks in the background whether TLS is
// served there now. Elsewhere it starts the TLS handshake and, when the
// engine has a plaintext probe (Spec.Probe), asks the plaintext question on a second
// connection at the same time: a TLS answer wins (and a handshake that
// starts and fails is the error, never a downgrade); a plaintext answer
// wins once no TLS answer has come within a grace after the ClientHello
// went out, and the probed connection is the one returned.
func (c *Config) dialPreferred(ctx context.Context, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	mode := sslconn.Preferred
	p := c.plan(mode, addr)
	if p.first == sslconn.Disabled {
		raw, err := dial(ctx, network, addr)
		p.next(sslconn.Disabled, err)
		if err != nil {
			return nil, err
		}
		p.runRecheck(func() error { return c.recheck(network, addr, dial) })
		return c.wrap(raw, raw, nil, mode, network, addr, dial), nil
	}
	if c.probe == nil {
		return c.dialPreferredSlow(ctx, p, network, addr, dial)
	}
	// At an address that has answered TLS, the probe waits for a TLS
	// answer that is late: a server restarted without TLS meanwhile.
	var probeAfter time.Duration
	if p.tlsKnown {
		probeAfter = tlsLate
	}

	type tlsResult struct {
		tc    *tls.Conn
		raw   net.Conn // the TCP connection under tc: the peer check needs the socket
		asked bool
		err   error
	}
	type probeResult struct {
		conn net.Conn
		rtt  time.Duration // from the connection made to the answer
		err  error
	}
	// The TLS attempt may outlive this call (below); it is bounded by the
	// handshake timeout, not by ctx.
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.HandshakeTimeout)
	stopTLS := context.AfterFunc(ctx, tcancel)
	watch := &handshakeWatch{sent: make(chan time.Time, 1), answered: make(chan struct{})}
	tlsCh := make(chan tlsResult, 1)
	go func() {
		defer tcancel()
		raw, err := dial(tctx, network, addr)
		if err != nil {
			tlsCh <- tlsResult{err: err}
			return
		}
		watch.dialed, watch.raw = time.Now(), raw // read after watch.sent
		tc, asked, err := c.handshakeWatched(tctx, mode, raw, addr, watch)
		tlsCh <- tlsResult{tc, raw, asked, err}
	}()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	probeCh := make(chan probeResult, 1)
	go func() {
		if probeAfter > 0 {
			t := time.NewTimer(probeAfter)
			defer t.Stop()
			select {
			case <-t.C:
			case <-watch.answered:
				probeCh <- probeResult{err: errTLSAnswered}
				return
			case <-pctx.Done():
				probeCh <- probeResult{err: pctx.Err()}
				return
			}
		}
		start := time.Now()
		raw, err := dial(pctx, network, addr)
		if err != nil {
			probeCh <- probeResult{err: err}
			return
		}
		_ = raw.SetDeadline(start.Add(firstByteTimeout))
		stop := context.AfterFunc(pctx, func() { _ = raw.SetDeadline(time.Now()) })
		asked := time.Now()
		err = c.probe(pctx, raw)
		stop()
		if err == nil && pctx.Err() == nil {
			_ = raw.SetDeadline(time.Time{})
			probeCh <- probeResult{conn: raw, rtt: time.Since(asked)}
			return
		}
		raw.Close()
		probeCh <- probeResult{err: errors.Join(err, pctx.Err())}
	}()
	// dropProbe closes the probed connection once it is known.
	dropProbe := func(plain net.Conn, pending bool) {
		pcancel()
		if plain != nil {
			plain.Close()
		}
		if pending {
			go func() {
				if r := <-probeCh; r.conn != nil {
					r.conn.Close()
				}
			}()
		}
	}

	var (
		plain        net.Conn
		plainRTT     time.Duration // how long the plaintext answer took
		probePending = true
		sentCh       = watch.sent
		answered     = watch.answered
		sentAt       time.Time
		grace        <-chan time.Time
	)
	// The grace starts when the probe has been answered and the
	// ClientHello is out: a server's ServerHello costs it about what the
	// ClientHello cost us (a key share, and a signature), so a machine that
	// is slow to make one (loaded, or under the race detector) waits longer.
	// A server slow to answer the plaintext question (loaded) is as slow
	// to answer the ClientHello: the grace is also three times that answer's
	// round trip. And it lasts plainGrace past the plaintext answer: a
	// machine that delivered that answer late is late with the TLS one too,
	// and a grace already spent would hand out plaintext at once.
	startGrace := func() {
		if plain != nil && !sentAt.IsZero() && answered != nil && grace == nil {
			d := max(tlsGrace, 3*sentAt.Sub(watch.dialed), 3*plainRTT)
			end := sentAt.Add(d)
			if late := time.Now().Add(plainGrace); late.After(end) {
				end = late
			}
			grace = time.After(time.Until(end))
		}
	}
	for {
		select {
		case sentAt = <-sentCh:
			sentCh = nil
			startGrace()
		case r := <-tlsCh:
			stopTLS()
			if r.err == nil {
				dropProbe(plain, probePending)
				p.next(mode, nil)
				w := c.wrap(r.tc, r.raw, r.tc, mode, network, addr, dial)
				w.certAsked = r.asked && c.s.ClientCert == nil
				return w, nil
			}
			if !errors.Is(r.err, sslconn.ErrServerNoTLS) {
				dropProbe(plain, probePending)
				p.next(mode, r.err)
				return nil, r.err
			}
			// No TLS here: the probed connection, once answered, is the one.
			if probePending {
				p := <-probeCh
				probePending, plain = false, p.conn
			}
			if plain == nil {
				// The plaintext question got no answer either: a server
				// that is shutting down closes every connection, which
				// says nothing about TLS. Retried like a refused one.
				return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%s: the server closed the connection on the TLS ClientHello and did not answer plaintext either: %w", addr, io.ErrUnexpectedEOF)}
			}
			p.next(mode, r.err)
			return c.wrap(plain, plain, nil, mode, network, addr, dial), nil
		case p := <-probeCh:
			probePending = false
			if p.err != nil {
				continue // the TLS attempt decides, with its own bounds
			}
			plain, plainRTT = p.conn, p.rtt
			startGrace()
		case <-answered:
			// The server answered the ClientHello: its handshake decides.
			answered, grace = nil, nil
		case <-grace:
			if readable(watch.raw) {
				// The server's answer to the ClientHello is in the socket,
				// not yet read: the handshake decides.
				answered, grace = nil, nil
				continue
			}
			p.next(mode, errPlainFirst)
			// A server slower to answer TLS than the grace still gets it
			// from the next connection on: the handshake goes on, bounded
			// by the handshake timeout, no longer by ctx.
			stopTLS()
			go func() {
				r := <-tlsCh
				if r.tc != nil {
					r.tc.Close()
				}
				c.rechecked(addr, r.err)
			}()
			return c.wrap(plain, plain, nil, mode, network, addr, dial), nil
		case <-ctx.Done():
			dropProbe(plain, probePending)
			go func() {
				if r := <-tlsCh; r.tc != nil {
					r.tc.Close()
				}
			}()
			return nil, ctx.Err()
		}
	}
}

// recheck makes one TLS attempt at addr, off the request path: does it
// speak TLS now?
func (c *Config) recheck(network, addr string, dial sslconn.DialFunc) error {
	// Bounded, as everything that runs off the request path: a server
	// that speaks TLS answers a ClientHello within milliseconds.
	ctx, cancel := context.WithTimeout(context.Background(), firstByteTimeout)
	defer cancel()
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return err
	}
	tc, _, err := c.handshake(ctx, sslconn.Preferred, raw, addr)
	if tc != nil {
		tc.Close()
	}
	return err
}

// dialPreferredSlow is PREFERRED for an engine without a plaintext probe, and
// at an address that has answered TLS: the silence of a plaintext server
// is seen only when the first-byte wait ends.
func (c *Config) dialPreferredSlow(ctx context.Context, p *plan, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, asked, err := c.handshake(ctx, sslconn.Preferred, raw, addr)
	if p.next(sslconn.Preferred, err) != sslconn.Disabled {
		if err != nil {
			return nil, err
		}
		w := c.wrap(tc, raw, tc, sslconn.Preferred, network, addr, dial)
		w.certAsked = asked && c.s.ClientCert == nil
		return w, nil
	}
	if raw, err = dial(ctx, network, addr); err != nil {
		return nil, err
	}
	return c.wrap(raw, raw, nil, sslconn.Preferred, network, addr, dial), nil
}
