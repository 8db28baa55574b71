package testenv

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestForwarder: connections follow the target; Move with cut closes the
// old ones, without keeps them.
func TestForwarder(t *testing.T) {
	echo := func() (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		return ln.Addr().String(), func() { ln.Close() }
	}
	a, stopA := echo()
	defer stopA()
	b, stopB := echo()
	defer stopB()
	f, err := StartForwarder(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	roundTrip := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	c1, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if err := roundTrip(c1); err != nil {
		t.Fatal(err)
	}
	f.Move(b, false)
	if err := roundTrip(c1); err != nil {
		t.Fatalf("kept connection: %v", err)
	}
	f.Move(b, true)
	if err := roundTrip(c1); err == nil {
		t.Fatal("a cut connection still works")
	}
	c2, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := roundTrip(c2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplication: a write on the primary reaches the replica; the
// read-only primary refuses the writer's writes; after a switchover the
// other node takes them and replicates them back.
func TestReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("needs database servers; not run with -short")
	}
	r, err := StartReplication(TLS{Off: true}, TLS{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	fwd, err := StartForwarder(Addr(r.Primary.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	write := func(s *Server, id string) (string, error) {
		return s.MySQL("INSERT INTO " + MySQLDatabase + ".writes VALUES (" + id + ")")
	}
	if out, err := write(r.Primary, "1"); err != nil {
		t.Fatal(err, out)
	}
	if err := r.SetReadOnly(); err != nil {
		t.Fatal(err)
	}
	// root has READ_ONLY ADMIN; the writer has not.
	out, err := r.Primary.MySQL("SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE LIKE '%" + MySQLWriter + "%' AND PRIVILEGE_TYPE='READ_ONLY ADMIN'")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("the writer has READ_ONLY ADMIN: %v %s", err, out)
	}
	old := r.Primary
	if err := r.Switchover(fwd, true); err != nil {
		t.Fatal(err)
	}
	if r.Primary == old || fwd.Target() != Addr(r.Primary.Port) {
		t.Fatal("roles did not swap")
	}
	if out, err := write(r.Primary, "2"); err != nil {
		t.Fatal(err, out)
	}
	if err := r.CatchUp(); err != nil {
		t.Fatal(err)
	}
	counts, err := r.Count(context.Background())
	if err != nil || counts[1] != 1 || counts[2] != 1 {
		t.Fatalf("new primary: %v %v", counts, err)
	}
	out, err = old.MySQL("SELECT COUNT(*) FROM " + MySQLDatabase + ".writes")
	if err != nil || strings.TrimSpace(out) != "2" {
		t.Fatalf("the old primary did not follow the new one: %v %s", err, out)
	}
	// And back.
	if err := r.Switchover(fwd, true); err != nil {
		t.Fatal(err)
	}
	if r.Primary != old {
		t.Fatal("roles did not swap back")
	}
	if out, err := write(r.Primary, "3"); err != nil {
		t.Fatal(err, out)
	}
}
