package core

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpState asks the kernel for a connection's TCP state: CLOSE_WAIT means
// the server sent FIN, CLOSE that the connection was reset. Unlike a peek,
// it is not fooled by a TLS close_notify waiting unread before the FIN. It
// runs before every write of a Conn, so the raw conn and the callback are
// made once, and the state is read as one byte (the first field of
// tcp_info): no allocation per write.
type tcpState struct {
	rc    syscall.RawConn
	state atomic.Int32 // tcpi_state, -1 when unknown
	// silent: a keepalive probe (see armDeadPeer) or a retransmission has
	// gone unanswered for longer than a live server's kernel takes to
	// answer one.
	silent atomic.Bool
	fn     func(fd uintptr)
}

// The head of struct tcp_info the check reads: tcpi_state at 0,
// tcpi_retransmits at 2 (retransmissions of unacknowledged data in a
// row), tcpi_probes at 3 (keepalive probes sent and not answered),
// tcpi_last_ack_recv at 56 (ms since the peer last acknowledged anything).
const (
	tcpInfoLen       = 60
	tcpiRetransmits  = 2
	tcpiProbes       = 3
	tcpiLastAckRecvd = 56
)

func newTCPState(conn net.Conn) *tcpState {
	rc := rawConn(conn)
	if rc == nil {
		return nil
	}
	p := &tcpState{rc: rc}
	p.fn = func(fd uintptr) {
		// A raw getsockopt into a stack buffer: x/sys's TCPInfo would
		// allocate on every write.
		var info [tcpInfoLen]byte
		n := uint32(tcpInfoLen)
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno != 0 || n < tcpInfoLen {
			p.state.Store(-1)
			return
		}
		p.state.Store(int32(info[0]))
		lastAck := time.Duration(binary.NativeEndian.Uint32(info[tcpiLastAckRecvd:])) * time.Millisecond
		p.silent.Store((info[tcpiProbes] > 0 || info[tcpiRetransmits] > 0) && lastAck >= silentAfter)
	}
	return p
}

// closed is watch.closed's answer, and whether the kernel gave one.
func (p *tcpState) closed() (error, bool) {
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
	if p.silent.Load() {
		return syscall.ETIMEDOUT, true
	}
	return nil, true
}

// closeSet learns when servers close or reset TCP connections, as it
// happens and without reading from them: one epoll instance watches every
// registered socket for EPOLLRDHUP (the server's FIN) and EPOLLHUP or
// EPOLLERR (a reset). Data arriving is not an event, so a connection in use
// costs nothing. The instance sits in Go's poller as a file, so no thread
// blocks on it, and it is closed when the last socket is unregistered.
type closeSet struct {
	mu   sync.Mutex
	ep   *os.File // nil while nothing is watched
	epfd int
	next uint64
	regs map[uint64]*closeReg
	done chan struct{} // closed with ep: ends the scan for silent servers
}

// closeReg is one watched socket: what to call when its server closes it
// or goes silent (nil once called), and its TCP state.
type closeReg struct {
	onClose func()
	state   *tcpState
	server  string
}

var closes closeSet

// notifyClose calls onClose, once and from another goroutine, when the
// server closes, resets or goes silent on wt's connection. stop ends the
// watch; it must be called before the connection is closed. ok is false
// when it cannot be watched (not a socket).
func notifyClose(wt *watch, onClose func()) (stop func(), ok bool) {
	rc := rawConn(wt.conn)
	if rc == nil {
		return nil, false
	}
	w := &closes
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ep == nil && !w.start() {
		return nil, false
	}
	id := w.next
	w.next++
	// The id travels in the event's data (Fd and Pad, 8 bytes).
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || cerr != nil {
		w.closeIfIdle()
		return nil, false
	}
	w.regs[id] = &closeReg{onClose, wt.state, wt.server}
	return func() { w.stop(id, rc) }, true
}

// start opens the epoll instance and its goroutine; w.mu is held.
func (w *closeSet) start() bool {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return false
	}
	// Non-blocking, the file is registered with Go's poller.
	f := os.NewFile(uintptr(fd), "sslconn-close-watch")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return false
	}
	w.ep, w.epfd, w.done = f, fd, make(chan struct{})
	if w.regs == nil {
		w.regs = map[uint64]*closeReg{}
	}
	go w.loop(rc)
	go w.scan(w.done)
	return true
}

func (w *closeSet) loop(rc syscall.RawConn) {
	evs := make([]unix.EpollEvent, 64)
	for {
		var ids []uint64
		// The function runs holding the file's read lock; it takes no
		// other lock, because closing the file waits for it.
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, err := unix.EpollWait(int(fd), evs, 0)
				if err == unix.EINTR {
					continue
				}
				for _, ev := range evs[:max(n, 0)] {
					ids = append(ids, uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32)
				}
				if n < len(evs) {
					return len(ids) > 0 // none: wait until the instance is readable
				}
			}
		})
		if err != nil {
			return // closed: nothing left to watch
		}
		for _, id := range ids {
			w.fire(id)
		}
	}
}

// fire calls id's onClose, once.
func (w *closeSet) fire(id uint64) {
	w.mu.Lock()
	var f func()
	if r := w.regs[id]; r != nil {
		f, r.onClose = r.onClose, nil
	}
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

// scan reports, as closed, sockets whose server went silent: no event
// tells of that, so their TCP state is read once every keepAliveEvery
// (one getsockopt each), until done.
func (w *closeSet) scan(done chan struct{}) {
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		var silent []uint64
		w.mu.Lock()
		for id, r := range w.regs {
			if r.onClose != nil && r.state != nil {
				if err, _ := r.state.closed(); errors.Is(err, syscall.ETIMEDOUT) {
					silent = append(silent, id)
					foundSilent(r.server)
				}
			}
		}
		w.mu.Unlock()
		for _, id := range silent {
			w.fire(id)
		}
	}
}

func (w *closeSet) stop(id uint64, rc syscall.RawConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.regs[id]; !ok {
		return
	}
	delete(w.regs, id)
	// While the socket is open; closing it would drop the registration too.
	_ = rc.Control(func(fd uintptr) { _ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	w.closeIfIdle()
}

// closeIfIdle closes the instance when nothing is registered; w.mu is held.
// Closing waits for the loop's EpollWait, which takes no lock, and wakes it.
func (w *closeSet) closeIfIdle() {
	if len(w.regs) == 0 && w.ep != nil {
		w.ep.Close()
		close(w.done)
		w.ep, w.done = nil, nil
	}
}
