package mitm

import (
	"net"
	"sync"
	"testing"
	"time"
)

// silentServer accepts connections and never answers: a server that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestStopWhileConnecting: clients keep connecting while the proxy stops.
// Each handler is blocked, on the client (Stall) or on a server that never
// answers (a MySQL relay waiting for the greeting). Stop must close both
// sides of every connection, including one accepted just after it looked,
// and return promptly. Run with -race: wg.Add must not race Wait.
func TestStopWhileConnecting(t *testing.T) {
	const (
		iterations = 200
		dialers    = 8
		// Stop takes milliseconds; StopTimeout plus as much again is room for
		// a slow machine under -race, and still catches a Stop that hangs.
		bound = 2 * StopTimeout
	)
	upstream := silentServer(t)
	for i := range iterations {
		cfg := Config{Engine: MySQL, Attack: Relay, Upstream: upstream}
		if i%2 == 1 {
			cfg.Attack = Stall
		}
		p, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
			quit  = make(chan struct{})
		)
		for range dialers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-quit:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
					if err != nil {
						time.Sleep(time.Millisecond)
						continue
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		errc := make(chan error, 1)
		go func() { errc <- p.Stop() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("iteration %d (%s): Stop: %v", i, cfg.Attack, err)
			}
		case <-time.After(bound):
			t.Fatalf("iteration %d (%s): Stop still waiting after %v", i, cfg.Attack, bound)
		}
		close(quit)
		wg.Wait()
		p.Close() // a second stop does nothing
		for _, c := range conns {
			c.Close()
		}
	}
}
