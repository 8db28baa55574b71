package sslconn

import (
	"testing"
	"time"
)

// TestBackoffDelays pins the documented delay table (no jitter).
func TestBackoffDelays(t *testing.T) {
	b := Backoff{}.withDefaults()
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := b.delay(i + 1); got != w*time.Millisecond {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}
