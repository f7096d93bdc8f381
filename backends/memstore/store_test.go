package memstore

import (
	"errors"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestAppendCopies checks what the suite cannot see from outside: the store
// copies appended buffers, so a caller reusing them does not change history.
func TestAppendCopies(t *testing.T) {
	s := New()
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	id := engine.SegmentID{Topic: "t", Segment: 1}
	buf := []byte("abc")
	if _, err := s.Append(ctx, id, [][]byte{buf}); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	got, err := s.Read(ctx, id, 0, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0]) != "abc" {
		t.Fatalf("read %q after caller mutated its buffer, want %q", got[0], "abc")
	}
	got[0][0] = 'Y'
	again, err := s.Read(ctx, id, 0, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0]) != "abc" {
		t.Fatalf("read %q after caller mutated a returned slice, want %q", again[0], "abc")
	}
}

func TestNewWithOptionsRejectsBadLimits(t *testing.T) {
	opts := DefaultOptions()
	opts.Store.Limits.MaxEntryBytes = 0
	if _, err := NewWithOptions(opts); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("NewWithOptions(bad limits) = %v, want ErrInvalidArgument", err)
	}
}
