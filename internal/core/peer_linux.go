package core

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerProbe asks the kernel for a connection's TCP state: CLOSE_WAIT means
// the server sent FIN, CLOSE that the connection was reset. Unlike a peek,
// it is not fooled by a TLS close_notify waiting unread before the FIN. It
// runs before every write of a Conn, so the raw conn and the callback are
// made once, and the state is read as one byte (the first field of
// tcp_info): no allocation per write.
type peerProbe struct {
	rc    syscall.RawConn
	state atomic.Int32 // tcpi_state, -1 when unknown
	fn    func(fd uintptr)
}

func newPeerProbe(conn net.Conn) *peerProbe {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peerProbe{rc: rc}
	p.fn = func(fd uintptr) {
		s, err := unix.GetsockoptByte(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			p.state.Store(-1)
			return
		}
		p.state.Store(int32(s))
	}
	return p
}

// closed is PeerClosed's answer, and whether the kernel gave one.
func (p *peerProbe) closed() (error, bool) {
	if p == nil || p.rc.Control(p.fn) != nil {
		return nil, false
	}
	switch p.state.Load() {
	case -1:
		return nil, false
	case 8: // TCP_CLOSE_WAIT
		return io.EOF, true
	case 7: // TCP_CLOSE
		return syscall.ECONNRESET, true
	}
	return nil, true
}
