package core

import (
	"fmt"
	"testing"

	"github.com/sslconn/sslconn/sslconn"
)

// TestPlan: PREFERRED's order of attempts and what each teaches the next
// connection; other modes make one attempt and learn nothing.
func TestPlan(t *testing.T) {
	noTLS := NewError(sslconn.ErrServerNoTLS, sslconn.Preferred, "a:1", "", nil)
	needsTLS := NewError(sslconn.ErrServerRequiresTLS, sslconn.Disabled, "a:1", "", nil)
	c, err := Resolve(Spec{}, sslconn.WithMode(sslconn.Preferred))
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		mode sslconn.Mode
		err  error
		next sslconn.Mode
	}
	for i, tt := range []struct {
		name  string
		plain bool // the address served plaintext only before
		steps []step
		then  sslconn.Mode // the next plan's first attempt
	}{
		{"TLS served", false, []step{{Preferred, nil, 0}}, Preferred},
		{"no TLS: plaintext, and plaintext first next time", false, []step{{Preferred, noTLS, Disabled}, {Disabled, nil, 0}}, Disabled},
		{"known plaintext, still plaintext", true, []step{{Disabled, nil, 0}}, Disabled},
		{"known plaintext, now forcing TLS", true, []step{{Disabled, needsTLS, Preferred}, {Preferred, nil, 0}}, Preferred},
		{"known plaintext, down: asks for TLS next time", true, []step{{Disabled, errString("refused"), 0}}, Preferred},
		{"flapping: three attempts at most", false, []step{{Preferred, noTLS, Disabled}, {Disabled, needsTLS, Preferred}, {Preferred, noTLS, 0}}, Disabled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := fmt.Sprintf("a:%d", i)
			if tt.plain {
				c.own.book.learn(addr)
			}
			p := c.plan(sslconn.Preferred, addr)
			if p.first != tt.steps[0].mode {
				t.Fatalf("first %v, want %v", p.first, tt.steps[0].mode)
			}
			for i, s := range tt.steps {
				if got := p.next(s.mode, s.err); got != s.next {
					t.Fatalf("step %d: next %v, want %v", i, got, s.next)
				}
			}
			if got := c.plan(sslconn.Preferred, addr).first; got != tt.then {
				t.Fatalf("next connection first %v, want %v", got, tt.then)
			}
		})
	}
	r := c.plan(sslconn.Required, "b:1")
	if r.first != sslconn.Required || r.next(sslconn.Required, noTLS) != 0 {
		t.Fatalf("REQUIRED: first %v", r.first)
	}
	if known, _ := c.own.book.get("b:1"); known {
		t.Fatal("REQUIRED taught the plan")
	}
}

type errString string

func (e errString) Error() string { return string(e) }
