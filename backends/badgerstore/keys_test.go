package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

// TestKeyOrder checks the property List and sequential reads rely on: byte
// order of keys is (topic, segment, offset) order, and no topic's prefix
// matches another topic's keys even when one name is a prefix of the other.
func TestKeyOrder(t *testing.T) {
	ids := []engine.SegmentID{
		{Topic: "a", Segment: 0}, {Topic: "a", Segment: 2}, {Topic: "a", Segment: 10}, {Topic: "a", Segment: 1 << 40},
		{Topic: "a.b", Segment: 0}, {Topic: "ab", Segment: 0}, {Topic: "a\u00e9", Segment: 1}, {Topic: "b", Segment: 0},
	}
	if !slices.IsSortedFunc(ids, func(x, y engine.SegmentID) int {
		if c := strings.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return cmpUint(x.Segment, y.Segment)
	}) {
		t.Fatal("test ids are not in (topic, segment) order")
	}
	var keys [][]byte
	for _, id := range ids {
		for _, off := range []uint64{0, 1, 255, 256, 1 << 33} {
			keys = append(keys, entryKey(id, off))
		}
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Fatal("entry keys built in (topic, segment, offset) order are not sorted bytewise")
	}
	metas := make([][]byte, len(ids))
	for i, id := range ids {
		metas[i] = metaKey(id)
	}
	if !slices.IsSortedFunc(metas, bytes.Compare) {
		t.Fatal("meta keys built in (topic, segment) order are not sorted bytewise")
	}
	for _, id := range ids {
		p := topicPrefix(kindMeta, id.Topic)
		for _, other := range ids {
			if got, want := bytes.HasPrefix(metaKey(other), p), other.Topic == id.Topic; got != want {
				t.Fatalf("prefix of topic %q matches meta of %s: %v, want %v", id.Topic, other, got, want)
			}
		}
		kind, back, err := parseSegmentKey(metaKey(id))
		if err != nil || kind != kindMeta || back != id {
			t.Fatalf("parseSegmentKey(metaKey(%s)) = %c %v %v", id, kind, back, err)
		}
		off, err := entryOffset(entryKeyPrefix(id), entryKey(id, 77))
		if err != nil || off != 77 {
			t.Fatalf("entryOffset = %d, %v; want 77", off, err)
		}
	}
}

func TestMetaCodec(t *testing.T) {
	for _, m := range []metaValue{{}, {Entries: 1, Bytes: 2}, {Entries: 1 << 50, Bytes: 1 << 60, Sealed: true}} {
		got, err := decodeMeta(m.encode())
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, metaValueLen-1), append(make([]byte, 16), 2)} {
		if _, err := decodeMeta(bad); !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("decodeMeta(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoders of keys and meta read
// from disk: they must never panic, and what they accept must re-encode to
// the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(metaKey(engine.SegmentID{Topic: "logs", Segment: 3}))
	f.Add(metaValue{Entries: 5, Bytes: 9, Sealed: true}.encode())
	f.Add([]byte("m\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if kind, id, err := parseSegmentKey(b); err == nil {
			if !bytes.Equal(segmentPrefix(kind, id, 0), b) {
				t.Fatalf("parseSegmentKey(%x) = %c %v, which encodes differently", b, kind, id)
			}
		}
		if m, err := decodeMeta(b); err == nil && !bytes.Equal(m.encode(), b) {
			t.Fatalf("decodeMeta(%x) = %+v, which encodes differently", b, m)
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("default options: %v", err)
	}
	if err := SmallOptions().Validate(); err != nil {
		t.Fatalf("small options: %v", err)
	}
	o := DefaultOptions()
	o.MemTableSize = 1 << 20
	o.ValueThreshold = 1 << 20 // over 15% of the memtable
	o.NumCompactors = 1
	o.Store.Durability = "sometimes"
	err := o.Validate()
	for _, want := range []string{"ValueThreshold", "NumCompactors", "durability"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Validate() = %v, want ErrInvalidArgument", err)
	}
	if _, err := Open(t.TempDir(), o); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Open with bad options = %v, want ErrInvalidArgument", err)
	}
}

// TestOpenTwiceFails: badger locks its directory, so a second store on the
// same directory is refused instead of corrupting the first.
func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, engine.DurabilityNone)
	if s, err := Open(dir, testOptions(t, engine.DefaultOptions())); !errors.Is(err, engine.ErrUnavailable) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("second Open on a locked dir = %v, want ErrUnavailable", err)
	}
}

// recordHandler keeps log records for inspection.
type recordHandler struct {
	recs *[]slog.Record
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	*h.recs = append(*h.recs, r)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func TestBadgerLogger(t *testing.T) {
	var recs []slog.Record
	l := badgerLogger{slog.New(recordHandler{&recs})}
	l.Errorf("disk %s\n", "gone")
	l.Warningf("slow")
	l.Infof("tables opened")
	want := []struct {
		level slog.Level
		msg   string
	}{{slog.LevelError, "disk gone"}, {slog.LevelWarn, "slow"}, {slog.LevelDebug, "tables opened"}}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		if recs[i].Level != w.level || recs[i].Message != w.msg {
			t.Fatalf("record %d = %v %q, want %v %q", i, recs[i].Level, recs[i].Message, w.level, w.msg)
		}
	}
}

// TestConformanceAlways runs the suite again in durability always, where
// every commit fsyncs and the committer groups concurrent appends.
func TestConformanceAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("fsync-heavy; the default-mode suite covers the logic")
	}
	h := harness()
	h.Open = func(tb testing.TB, dir string) (engine.SegmentStore, error) {
		o := engine.DefaultOptions()
		o.Durability = engine.DurabilityAlways
		return Open(dir, testOptions(tb, o))
	}
	runConformance(t, h)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
