package tdsserver

import (
	"net"
	"sync"
	"testing"
	"time"
)

// TestStopWhileConnecting: clients keep connecting while the server stops,
// and each connection stays open and silent, so its session blocks reading
// until the server closes it. Stop must close every connection, including
// one accepted just after it looked at the open ones, and return promptly;
// Listen after it must work. Run with -race: wg.Add must not race Wait.
func TestStopWhileConnecting(t *testing.T) {
	const (
		iterations = 200
		dialers    = 8
		// Stop takes milliseconds; StopTimeout plus as much again is room for
		// a slow machine under -race, and still catches a Stop that hangs.
		bound = 2 * StopTimeout
	)
	conf := Config{Encrypt: EncryptNotSup, User: "sa", Password: "Pw-123456"}
	stopWithin := func(t *testing.T, s *Server, i int) {
		t.Helper()
		errc := make(chan error, 1)
		begin := time.Now()
		go func() { errc <- s.Stop() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("iteration %d: Stop: %v", i, err)
			}
		case <-time.After(bound):
			t.Fatalf("iteration %d: Stop still waiting after %v", i, time.Since(begin).Round(time.Millisecond))
		}
	}
	for i := range iterations {
		s, err := Start(conf)
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
					c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
					if err != nil {
						time.Sleep(time.Millisecond)
						continue
					}
					// Half a packet header: the session waits for the rest.
					_, _ = c.Write([]byte{packPrelogin, 0, 0})
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		stopWithin(t, s, i)
		if i%10 == 0 {
			// A restart with clients still connecting, then a second stop.
			if err := s.Listen(conf); err != nil {
				t.Fatalf("iteration %d: Listen after Stop: %v", i, err)
			}
			time.Sleep(time.Millisecond)
			stopWithin(t, s, i)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("iteration %d: second Stop: %v", i, err)
		}
		close(quit)
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestStopConcurrent: Stop from several goroutines at once, as deferred
// and cleanup Stops may be, neither panics nor hangs.
func TestStopConcurrent(t *testing.T) {
	s, err := Start(Config{Encrypt: EncryptNotSup})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
