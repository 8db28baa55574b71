//go:build unix

package core

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// peek reads one byte without consuming it or blocking: none and no error
// means the server sent FIN. It is watch.closed's way on macOS and the BSDs,
// and on Linux when the kernel's TCP state cannot be read.
func peek(conn net.Conn) error {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	var closed error
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && err == nil:
			closed = io.EOF
		case errors.Is(err, syscall.ECONNRESET):
			closed = syscall.ECONNRESET
		}
		return true
	})
	return closed
}

// rawConn is raw's syscall.RawConn, or nil when raw is not a socket (as
// through some user dialers).
func rawConn(raw net.Conn) syscall.RawConn {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readable reports, without reading or blocking, whether conn has bytes
// waiting to be read. It may run while another goroutine is blocked in a
// Read of conn: Control, unlike RawConn.Read, does not wait for that Read.
func readable(conn net.Conn) bool {
	rc := rawConn(conn)
	if rc == nil {
		return false
	}
	var n int
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
