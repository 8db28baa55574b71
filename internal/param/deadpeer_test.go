package param_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// TestDeadPeerParam: dead-peer-timeout in a DSN, and its default.
func TestDeadPeerParam(t *testing.T) {
	tests := []struct {
		value string // "" : not given
		want  time.Duration
		bad   bool
	}{
		{"", 10 * time.Second, false},
		{"3s", 3 * time.Second, false},
		{"2500ms", 2500 * time.Millisecond, false},
		{"7", 7 * time.Second, false},
		{"off", -1, false},
		{"OFF", -1, false},
		{"0", -1, false},
		{"0s", -1, false},
		{"soon", 0, true},
		{"-5", 0, true},
		{"-5s", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			q := url.Values{}
			if tt.value != "" {
				q.Set("deadPeerTimeout", tt.value) // any spelling
			}
			cfg, err := core.Resolve(core.Spec{Params: q})
			if tt.bad {
				if !errors.Is(err, sslconn.ErrInvalidOption) {
					t.Fatalf("err = %v, want ErrInvalidOption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Settings().DeadPeer; got != tt.want {
				t.Fatalf("DeadPeer = %v, want %v", got, tt.want)
			}
		})
	}
}
