package meta

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEpochsAreDurableAndNeverLowered(t *testing.T) {
	dir := t.TempDir()
	k := Key{Topic: "t", Segment: 3}
	e := &Epochs{Dir: dir}
	if got, err := e.Get(k); err != nil || got != 0 {
		t.Fatalf("fresh epoch = %d, %v", got, err)
	}
	if err := e.Raise(k, 4); err != nil {
		t.Fatal(err)
	}
	if err := e.Raise(k, 2); err != nil {
		t.Fatal(err)
	}
	again := &Epochs{Dir: dir} // a restart
	if got, err := again.Get(k); err != nil || got != 4 {
		t.Fatalf("epoch after restart = %d, %v; want 4 (never lowered)", got, err)
	}
}

func TestFencesAreDurable(t *testing.T) {
	dir := t.TempDir()
	k := Key{Topic: "t", Segment: 1}
	f := &Fences{Dir: dir}
	if err := f.Set(k, true); err != nil {
		t.Fatal(err)
	}
	if on, err := (&Fences{Dir: dir}).Has(k); err != nil || !on {
		t.Fatalf("fence after restart: %v %v", on, err)
	}
	if err := f.Set(k, false); err != nil {
		t.Fatal(err)
	}
	if on, err := (&Fences{Dir: dir}).Has(k); err != nil || on {
		t.Fatalf("lifted fence after restart: %v %v", on, err)
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "epochs.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Epochs{Dir: dir}).Get(Key{Topic: "t", Segment: 1}); err == nil {
		t.Fatal("a corrupt epochs.json was read as empty: a fenced replica would accept a deposed leader")
	}
}

// TestReadsTheOldEpochsFile: epochs.json written by the previous version
// (before this package existed) is read as it was.
func TestReadsTheOldEpochsFile(t *testing.T) {
	dir := t.TempDir()
	old := `[{"topic":"t","segment":3,"epoch":4},{"topic":"u","segment":1,"epoch":2}]`
	if err := os.WriteFile(filepath.Join(dir, "epochs.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Epochs{Dir: dir}
	for k, want := range map[Key]uint64{{Topic: "t", Segment: 3}: 4, {Topic: "u", Segment: 1}: 2, {Topic: "v", Segment: 1}: 0} {
		if got, err := e.Get(k); err != nil || got != want {
			t.Errorf("%v: %d, %v; want %d", k, got, err, want)
		}
	}
}
