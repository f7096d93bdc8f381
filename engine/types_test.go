package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ok    bool
	}{
		{"simple", "logs", true},
		{"dots and dashes", "app.v1-events_x", true},
		{"unicode", "événements", true},
		{"max length", strings.Repeat("a", MaxTopicBytes), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxTopicBytes+1), false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"parent escape", "../x", false},
		{"slash", "/", false},
		{"absolute", "/etc/passwd", false},
		{"backslash", `a\b`, false},
		{"nul", "a\x00b", false},
		{"space", "a b", false},
		{"newline", "a\nb", false},
		{"bad utf8", "a\xffb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTopic(tt.topic)
			if tt.ok && err != nil {
				t.Fatalf("ValidateTopic(%q) = %v, want nil", tt.topic, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("ValidateTopic(%q) = %v, want ErrInvalidName", tt.topic, err)
			}
		})
	}
}

func TestCheckBatch(t *testing.T) {
	l := Limits{MaxEntryBytes: 4, MaxBatchBytes: 6}
	if err := l.CheckBatch([][]byte{{}, []byte("abcd")}); err != nil {
		t.Fatalf("valid batch: %v", err)
	}
	for name, b := range map[string][][]byte{
		"empty batch":   nil,
		"entry too big": {[]byte("abcde")},
		"batch too big": {[]byte("abcd"), []byte("abc")},
	} {
		if err := l.CheckBatch(b); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestOptions(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("default options invalid: %v", err)
	}
	o := DefaultOptions()
	o.Durability = "sometimes"
	if err := o.Validate(); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad durability: %v", err)
	}
	if d, err := ParseDurability("always"); err != nil || d != DurabilityAlways {
		t.Fatalf("ParseDurability(always) = %v, %v", d, err)
	}
}
