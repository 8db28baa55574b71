package core

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Moving endpoints. A host name is resolved again for every new connection,
// so new connections follow a name moved to another address (DNS failover,
// a moved VIP). Kept connections would stay with the old address for as
// long as they live, and the old server may well stay up (a planned move,
// or a primary demoted and still answering). So, while connections made
// through a host name are kept, each such name is resolved again every
// reresolveEvery in the background (one lookup per name, whatever the
// number of connections), and a connection whose address is no longer in a
// successful answer is retired: never in the middle of an operation, only
// where its driver takes it for a new one (see watch.retiring), and, for an
// adapter that hears of closes (Conn.OnClose), told as a close. A failed or
// empty lookup retires nothing. IP literals, and connections from a user's
// dialer (WithDialer, whose remote address is a tunnel's or a proxy's), are
// left alone. The drivers' own topologies (Redis Cluster and Sentinel,
// MongoDB replica sets) stay theirs: they dial the addresses their servers
// announce, and only a connection made through a name is followed.

const (
	// reresolveEvery is the pace of the background lookups: a name is
	// followed within it (plus the resolver's own caching), and a DNS
	// server sees one query per name every 5 s per process at most.
	reresolveEvery = 5 * time.Second
	// reresolveTimeout bounds one background lookup.
	reresolveTimeout = 3 * time.Second
	// nameTTL is how long a dialed connection's name waits for its watch
	// (Config.watch takes it at once); a connection that never gets one
	// (a PREFERRED probe) is forgotten after it.
	nameTTL = time.Minute
)

// lookupIP resolves a name the way the core's dialer does (net.Dialer with
// no Resolver: net.DefaultResolver).
var lookupIP = net.DefaultResolver.LookupNetIP

// dialedNames holds, for each TCP connection the core's own dialer made to
// a host name, that name, until Config.watch takes it.
var dialedNames = struct {
	sync.Mutex
	m map[net.Conn]dialedName
}{m: map[net.Conn]dialedName{}}

type dialedName struct {
	name string
	at   time.Time
}

// hostName is addr's host when it is a name, not an IP literal.
func hostName(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	return host
}

// noteName records that raw was dialed to addr, for Config.watch.
func noteName(raw net.Conn, addr string) {
	name := hostName(addr)
	if name == "" {
		return
	}
	if _, ok := raw.(*net.TCPConn); !ok {
		return
	}
	now := time.Now()
	dialedNames.Lock()
	defer dialedNames.Unlock()
	for c, d := range dialedNames.m {
		if now.Sub(d.at) > nameTTL {
			delete(dialedNames.m, c)
		}
	}
	dialedNames.m[raw] = dialedName{name, now}
}

// takeName returns the name raw was dialed to, if noteName recorded one.
func takeName(raw net.Conn) string {
	dialedNames.Lock()
	defer dialedNames.Unlock()
	d, ok := dialedNames.m[raw]
	if ok {
		delete(dialedNames.m, raw)
	}
	return d.name
}

// follow registers w, whose connection was dialed to name, for the
// background lookups.
func (w *watch) follow(name string) {
	a, ok := w.conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	w.name, w.ip = name, a.AddrPort().Addr().Unmap()
	names.add(w)
}

// retiring reports whether w's connection leads to an address its name no
// longer resolves to, and is between operations: everything written has
// been answered. The request about to be written is then refused unsent
// (sslconn.ErrNotSent), and the driver retries it on a new connection.
func (w *watch) retiring() bool {
	return w.retired.Load() && !w.unanswered.Load()
}

// movedError is the cause a retired connection's request is refused with.
func (w *watch) movedError() error {
	return fmt.Errorf("%s no longer resolves to %v: the connection to it is retired", w.name, w.ip)
}

// nameSet is the connections per name that the background lookups follow.
type nameSet struct {
	mu     sync.Mutex
	byName map[string]map[*watch]struct{}
	stop   chan struct{} // ends the running loop; nil when none runs
}

var names = nameSet{byName: map[string]map[*watch]struct{}{}}

func (s *nameSet) add(w *watch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.byName[w.name]
	if ws == nil {
		ws = map[*watch]struct{}{}
		s.byName[w.name] = ws
	}
	ws[w] = struct{}{}
	if s.stop == nil {
		s.stop = make(chan struct{})
		go s.loop(s.stop)
	}
}

// drop forgets w, and ends the loop when nothing is left to follow; s.mu
// is held.
func (s *nameSet) drop(w *watch) {
	if ws := s.byName[w.name]; ws != nil {
		delete(ws, w)
		if len(ws) == 0 {
			delete(s.byName, w.name)
		}
	}
	if len(s.byName) == 0 && s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
}

func (s *nameSet) remove(w *watch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(w)
}

// loop resolves each followed name every reresolveEvery, until stop is
// closed (no connection is followed any more).
func (s *nameSet) loop(stop chan struct{}) {
	tick := time.NewTicker(reresolveEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		pending := make([]string, 0, len(s.byName))
		for n := range s.byName {
			pending = append(pending, n)
		}
		s.mu.Unlock()
		for _, n := range pending {
			s.check(n)
		}
	}
}

// check resolves name and retires its connections to addresses no longer
// in the answer. A failed or empty answer retires nothing.
func (s *nameSet) check(name string) {
	s.mu.Lock()
	lookup := lookupIP // replaced by tests, under s.mu
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), reresolveTimeout)
	addrs, err := lookup(ctx, "ip", name)
	cancel()
	if err != nil || len(addrs) == 0 {
		return
	}
	now := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		now[a.Unmap()] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.byName[name] {
		if !now[w.ip] {
			w.retired.Store(true)
			s.drop(w)
			if f := w.closeFn.Load(); f != nil {
				go (*f)()
			}
		}
	}
}
