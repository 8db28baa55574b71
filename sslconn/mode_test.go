package sslconn

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
	}{
		{"DISABLED", Disabled}, {"disabled", Disabled}, {"disable", Disabled},
		{"PREFERRED", Preferred}, {"prefer", Preferred},
		{"REQUIRED", Required}, {"require", Required}, {" Required ", Required},
		{"VERIFY_CA", VerifyCA}, {"verify-ca", VerifyCA}, {"Verify_Ca", VerifyCA},
		{"VERIFY_IDENTITY", VerifyIdentity}, {"verify-identity", VerifyIdentity}, {"verify-full", VerifyIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMode(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseMode(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if back, _ := ParseMode(got.String()); back != got {
				t.Fatalf("String() %q does not parse back", got.String())
			}
		})
	}
	for _, bad := range []string{"", "on", "true", "VERIFY", "verify_full_x"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			_, err := ParseMode(bad)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("ParseMode(%q) err = %v, want ErrInvalidOption", bad, err)
			}
			for _, name := range []string{"DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY", "ssl-mode"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not list %s", err, name)
				}
			}
		})
	}
}

func TestModeString(t *testing.T) {
	want := []string{"DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"}
	for i, m := range []Mode{Disabled, Preferred, Required, VerifyCA, VerifyIdentity} {
		if m.String() != want[i] {
			t.Errorf("%d: %q, want %q", i, m, want[i])
		}
	}
	if Mode(0).String() != "" {
		t.Errorf("zero mode should print empty")
	}
	var m Mode
	if err := m.UnmarshalText([]byte("verify-ca")); err != nil || m != VerifyCA {
		t.Fatalf("UnmarshalText: %v %v", m, err)
	}
}
