package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sslconn/sslconn/sslconn"
)

const (
	// tlsGrace is how long, past a plaintext round trip after the
	// ClientHello went out, PREFERRED lets a server that answered the
	// plaintext question answer the ClientHello before it closes its side
	// of the TLS connection (see dialPreferred). A server that serves TLS
	// and plaintext on one port (managed endpoints, mongod's allowTLS)
	// answers both; its ServerHello costs it a key exchange and a
	// signature, about a millisecond (measured: Redis 7, 0.7-1.1 ms on
	// loopback), which the plaintext answer does not. It costs no safety,
	// only speed: a TLS answer after it still decides, and costs the
	// connection a second handshake.
	tlsGrace = 2 * time.Millisecond
	// tlsLate is when PREFERRED starts the plaintext probe at an address
	// that has answered TLS before, at the least: a distant server gets
	// twice its last answer's time (addrBook.probeAfter).
	tlsLate = 50 * time.Millisecond
)

var errTLSAnswered = errors.New("the server answered TLS: no probe")

// recheckEvery is how often an address known to serve plaintext is asked
// again, off the request path, whether it speaks TLS now (the "enable SSL"
// change behind a proxy that accepts both); a variable for tests.
var recheckEvery = 5 * time.Second

// dialPreferred is one PREFERRED connection attempt.
//
// At an address known to serve plaintext it dials plaintext, as a bare
// driver would, and now and then asks in the background whether TLS is
// served there now. Elsewhere it starts the TLS handshake and, when the
// engine has a plaintext probe (Spec.Probe), asks the plaintext question
// on a second connection at the same time.
//
// The TLS connection alone decides, so that one server gets one outcome
// whatever the load: any TLS record from the server (a ServerHello, an
// alert), whenever it comes, means it speaks TLS, and the handshake's
// outcome is the connection's (a handshake that fails is an error, never a
// downgrade). Plaintext wins only on a definite "no TLS" on that
// connection: an answer that is not TLS, a close or reset before any byte,
// or no byte within the handshake's first-byte wait (firstByteTimeout, as
// REQUIRED). The plaintext answer only hastens that: once it has come,
// and a grace after the ClientHello (tlsGrace, past a round trip) has
// passed with no TLS answer, PREFERRED closes its side of the TLS
// connection (a TCP half-close). A server that speaks TLS has read the
// whole ClientHello and still answers it, first, in TLS; a plaintext
// server, silent on a ClientHello (Redis on its plaintext port), closes
// at the FIN: one round trip. A TLS answer to a half-closed connection
// cannot complete a handshake: a new TLS connection, without a probe,
// decides (a slow server that serves both gets TLS; one limited to TLS
// 1.0, its version alert). Where the dialer's connection cannot
// half-close (a net.Conn without CloseWrite), the first-byte wait decides.
// The one case left to timing: a relay that closes both ways at the FIN
// (nginx's stream proxy by default) loses a TLS answer its server had not
// sent within the grace; the address is then asked again at once, off the
// request path.
func (c *Config) dialPreferred(ctx context.Context, network, addr string, dial sslconn.DialFunc, configs bool) (net.Conn, error) {
	mode := sslconn.Preferred
	k, _ := c.knowledgeOf(dial, configs)
	p := c.planIn(&k.book, mode, addr)
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
		probeAfter = p.book.probeAfter(addr)
	}
	start := time.Now()

	type tlsResult struct {
		tc    *tls.Conn
		raw   net.Conn // the TCP connection under tc: the peer check needs the socket
		asked bool
		err   error
	}
	type probeResult struct {
		conn net.Conn
		rtt  time.Duration // from the question asked to the answer
		err  error
	}
	// The TLS attempt is bounded by the handshake timeout and by ctx.
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
		closedWrite  bool          // PREFERRED closed its side of the TLS connection
		answeredIn   time.Duration // from start to the server's first TLS byte
	)
	// The grace runs from the ClientHello: a plaintext round trip (the
	// ServerHello needs one too; a loaded server is slow with both), and
	// what a ServerHello costs the server, about what the ClientHello cost
	// us (a key share, and a signature): a machine slow to make one waits
	// longer.
	startGrace := func() {
		if plain != nil && !sentAt.IsZero() && answered != nil && grace == nil {
			end := sentAt.Add(plainRTT + max(tlsGrace, 3*sentAt.Sub(watch.dialed)))
			grace = time.After(max(0, time.Until(end)))
		}
	}
	for {
		select {
		case sentAt = <-sentCh:
			sentCh = nil
			startGrace()
		case r := <-tlsCh:
			stopTLS()
			if r.err == nil && !closedWrite {
				dropProbe(plain, probePending)
				p.next(mode, nil)
				p.book.noteAnswer(addr, answeredIn)
				w := c.wrap(r.tc, r.raw, r.tc, mode, network, addr, dial)
				w.certAsked = r.asked && c.s.ClientCert == nil
				return w, nil
			}
			if r.err == nil || (closedWrite && isClosed(watch.answered) && !errors.Is(r.err, sslconn.ErrServerNoTLS) && ctx.Err() == nil) {
				// It answered in TLS, on a connection already half-closed:
				// a new one decides.
				if r.tc != nil {
					r.tc.Close()
				}
				dropProbe(plain, probePending)
				return c.dialPreferredTLS(ctx, p, network, addr, dial)
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
			if closedWrite {
				// It closed at our FIN. So does a relay that does not pass
				// a half-close on (nginx's stream proxy by default), and
				// with it goes a TLS answer the server behind it had not
				// sent yet: ask again now, off the request path, on a
				// connection left open for the first-byte wait.
				p.recheckNow(func() error { return c.recheck(network, addr, dial) })
			}
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
			answeredIn = time.Since(start)
		case <-grace:
			answered, grace = nil, nil
			if readable(watch.raw) {
				// The server's answer to the ClientHello is in the socket,
				// not yet read: the handshake decides, uncut.
				continue
			}
			// Ask the silent server for a definite answer: a FIN. Where
			// the connection cannot half-close, the first-byte wait
			// decides.
			if cw, ok := watch.raw.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				closedWrite = true
			}
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

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dialPreferredTLS is PREFERRED's TLS attempt at an address whose server
// has just answered TLS on a connection the race had half-closed: a new
// TLS connection, whose outcome, connection or error, is the attempt's.
func (c *Config) dialPreferredTLS(ctx context.Context, p *plan, network, addr string, dial sslconn.DialFunc) (net.Conn, error) {
	mode := sslconn.Preferred
	p.book.learnTLS(addr)
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, asked, err := c.handshake(ctx, mode, raw, addr)
	if errors.Is(err, sslconn.ErrServerNoTLS) {
		// It answered TLS, and now does not: restarting with other
		// settings. Found out anew, like a refused dial.
		p.book.forget(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%s: the server answered TLS, then not on a new connection: %w", addr, err)}
	}
	p.next(mode, err)
	if err != nil {
		return nil, err
	}
	w := c.wrap(tc, raw, tc, mode, network, addr, dial)
	w.certAsked = asked && c.s.ClientCert == nil
	return w, nil
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
