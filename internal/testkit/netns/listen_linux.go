package netns

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Listen opens a listener inside the host, from this process: an
// in-process server (the TDS test server, an echo server) then serves from
// the host. The socket stays in the host's namespace whichever thread
// accepts on it.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	// A thread of its own, switched into the namespace and back; if the
	// way back fails, the goroutine exits still locked and the runtime
	// retires the thread rather than reuse it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer back.Close()
		target, err := os.Open(filepath.Join("/run/netns", h.Name))
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("netns: enter %s: %w", h.Name, err)}
			return
		}
		ln, lerr := net.Listen(network, addr)
		if err := unix.Setns(int(back.Fd()), unix.CLONE_NEWNET); err != nil {
			if ln != nil {
				ln.Close()
			}
			done <- result{nil, fmt.Errorf("netns: leave %s: %w", h.Name, err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln, lerr}
	}()
	r := <-done
	return r.ln, r.err
}
