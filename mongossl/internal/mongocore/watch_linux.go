//go:build linux

package mongocore

import (
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeWatch learns when servers close or reset TCP connections, as it
// happens and without reading from them: one epoll instance watches every
// registered socket for EPOLLRDHUP (the server's FIN) and EPOLLHUP or
// EPOLLERR (a reset). Data arriving is not an event, so a connection in use
// costs nothing. The instance sits in Go's poller as a file, so no thread
// blocks on it, and it is closed when the last socket is unregistered.
type closeWatch struct {
	mu   sync.Mutex
	ep   *os.File // nil while nothing is watched
	epfd int
	next uint64
	regs map[uint64]func() // id -> what to call on close; nil once called
}

var closes closeWatch

// watchClose calls onClose, once and from another goroutine, when the
// server closes or resets raw. stop ends the watch; it must be called
// before raw is closed. ok is false when raw cannot be watched (not a
// socket, as through some user dialers).
func watchClose(raw net.Conn, onClose func()) (stop func(), ok bool) {
	sc, isSock := raw.(syscall.Conn)
	if !isSock {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
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
	w.regs[id] = onClose
	return func() { w.stop(id, rc) }, true
}

// start opens the epoll instance and its goroutine; w.mu is held.
func (w *closeWatch) start() bool {
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
	w.ep, w.epfd = f, fd
	if w.regs == nil {
		w.regs = map[uint64]func(){}
	}
	go w.loop(rc)
	return true
}

func (w *closeWatch) loop(rc syscall.RawConn) {
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
			w.mu.Lock()
			f := w.regs[id]
			if f != nil {
				w.regs[id] = nil
			}
			w.mu.Unlock()
			if f != nil {
				f()
			}
		}
	}
}

func (w *closeWatch) stop(id uint64, rc syscall.RawConn) {
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
func (w *closeWatch) closeIfIdle() {
	if len(w.regs) == 0 && w.ep != nil {
		w.ep.Close()
		w.ep = nil
	}
}
