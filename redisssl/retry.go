package redisssl

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// notExecuted reports whether a command's error proves the server did not
// run it: the connection was closed before it was sent (a restart), or the
// server refused it while loading or failing over (READONLY: a master
// demoted to replica by a failover). Retrying those cannot
// apply anything twice.
func notExecuted(err error) bool {
	if err == nil || err == redis.Nil || core.IsPermanent(err) {
		return false
	}
	if errors.Is(err, sslconn.ErrNotSent) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		for _, p := range []string{"LOADING ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN ", "READONLY "} {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
	}
	return false
}

func pipelineNotSent(err error) bool {
	return errors.Is(err, sslconn.ErrNotSent) && !core.IsPermanent(err)
}

// retryHook re-runs commands that were not executed, with the core's budget
// and backoff, and nothing else: a command whose connection died after it
// was sent is reported to the caller, never replayed.
// A context that ends while go-redis waits for a new connection becomes
// sslconn.ErrUnavailable (see dialer).
type retryHook struct {
	cfg *core.Config
	d   *dialer
}

// DialHook tags the client's dials with the client as their owner, and
// answers askClosed's dial: the hook is the client's first, so no other
// hook sees it (see owner).
func (h retryHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if isAskClosed(ctx) {
			return nil, errAskedClosed
		}
		if h.d != nil {
			ctx = withOwner(ctx, h.d.owner)
		}
		return next(ctx, network, addr)
	}
}

func (h retryHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// The first attempt runs bare: a hook on every command must cost
		// nothing when nothing fails (BenchmarkQuery).
		err := next(ctx, cmd)
		if err == nil {
			return nil
		}
		if notExecuted(err) {
			err = h.cfg.RetrySafe(ctx, "redis", func(ctx context.Context) error { return next(ctx, cmd) }, notExecuted)
		}
		return h.explain(ctx, typed(err, cmd), cmd)
	}
}

func (h retryHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// Only a pipeline none of whose commands went out is safe to resend.
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		if pipelineNotSent(err) {
			err = h.cfg.RetrySafe(ctx, "redis", func(ctx context.Context) error { return next(ctx, cmds) }, pipelineNotSent)
		}
		return h.explain(ctx, typed(err, cmds...), cmds...)
	}
}

// typed makes a failure after the commands went out (an end of stream, a
// reset, a read timeout, a server gone silent) sslconn.ErrOutcomeUnknown,
// in the result and in the commands that carry it.
// The caller's own deadline or cancellation stays a context error.
func typed(err error, cmds ...redis.Cmder) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return replace(err, outcomeOf(err), cmds)
}

// explain replaces a context error that hides a failing dial, in the
// result and in the commands that carry it.
func (h retryHook) explain(ctx context.Context, err error, cmds ...redis.Cmder) error {
	if ctx.Err() == nil || h.d == nil {
		return err
	}
	return replace(err, h.d.explain(ctx, err), cmds)
}

// replace puts e in place of err, in the commands that carry err too.
func replace(err, e error, cmds []redis.Cmder) error {
	if e != err {
		for _, cmd := range cmds {
			if cmd.Err() == err {
				cmd.SetErr(e)
			}
		}
	}
	return e
}

// outcomeHook runs on every node client of a cluster. go-redis's cluster
// client re-sends a command after an end of stream, a reset or a read
// timeout, even with MaxRetries -1 (its MOVED/ASK loop retries those too),
// so a write whose connection died after it was sent could apply twice.
// Such errors become sslconn.ErrOutcomeUnknown, which it does not retry, and
// reach the caller; errors from before anything was sent pass unchanged.
//
// Its DialHook tags the node's dials with the node as their owner, for the
// cluster client's dialer, and answers askClosed's dial. It is the node's
// first hook unless a NewClient set in the options added hooks of its own,
// which then see that dial too (with a cancelled context) before it.
type outcomeHook struct{ o *owner }

func (h outcomeHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if isAskClosed(ctx) {
			return nil, errAskedClosed
		}
		return next(withOwner(ctx, h.o), network, addr)
	}
}

func (outcomeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return outcomeOf(next(ctx, cmd)) }
}

func (outcomeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return outcomeOf(next(ctx, cmds)) }
}

func outcomeOf(err error) error {
	var se *sslconn.Error
	var op *net.OpError
	switch {
	case err == nil, errors.Is(err, sslconn.ErrNotSent), errors.As(err, &se):
		return err // nothing sent, or the connection was refused
	case errors.As(err, &op) && op.Op == "dial":
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), isTimeout(err):
		return core.OutcomeUnknown(err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
