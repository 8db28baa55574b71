package testenv

import (
	"errors"
	"syscall"
)

// Freeze stops the server's processes (SIGSTOP) without closing anything:
// its kernel still acknowledges packets, as for a server stalled on a disk
// or a long pause. Thaw resumes it.
func (s *Server) Freeze() error { return s.sendSignal(sigStop) }

// Thaw undoes Freeze.
func (s *Server) Thaw() error { return s.sendSignal(sigCont) }

func (s *Server) sendSignal(sig syscall.Signal) error {
	if !freezeSupported {
		return errors.New("testenv: freezing a server needs Unix signals")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("testenv: " + s.Name + " is not running")
	}
	return signal(s.cmd, sig)
}
