package mmapstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// selfChecking makes a payload that proves its own integrity: random
// bytes followed by their CRC.
func selfChecking(rng *rand.Rand) []byte {
	b := make([]byte, 4+rng.IntN(200))
	for i := range b[4:] {
		b[4+i] = byte(rng.Uint32())
	}
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

func intact(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b) == crc32.ChecksumIEEE(b[4:])
}

// TestStressMixedOps runs appends, reads, seals, deletes and syncs from
// many goroutines over a few segments with tiny files (constant growth)
// and one mapped sealed segment allowed (constant eviction), in none and
// always mode, for a bounded time: no deadlock, no race, no damaged entry,
// only the errors the contract allows.
func TestStressMixedOps(t *testing.T) {
	for _, tc := range []struct {
		d          engine.Durability
		closeEarly bool
	}{{engine.DurabilityNone, false}, {engine.DurabilityAlways, false}, {engine.DurabilityAlways, true}} {
		d := tc.d
		name := string(d)
		if tc.closeEarly {
			name += "/close-midway"
		}
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			o.Store.Durability = d
			o.SegmentFileBytes = 4096
			o.MaxMappedSegments = 1
			s := openT(t, t.TempDir(), o)
			deadline := time.Now().Add(time.Second)
			var wg sync.WaitGroup
			if tc.closeEarly {
				// Close races the workers; they then get ErrClosed.
				wg.Go(func() {
					time.Sleep(300 * time.Millisecond) // a point in the middle of the run, not a wait
					if err := s.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
			}
			for w := range 8 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 99))
					for time.Now().Before(deadline) {
						id := engine.SegmentID{Topic: "stress", Segment: uint64(rng.IntN(4))}
						var err error
						switch op := rng.IntN(20); {
						case op < 10:
							batch := make([][]byte, 1+rng.IntN(8))
							for i := range batch {
								batch[i] = selfChecking(rng)
							}
							_, err = s.Append(t.Context(), id, batch)
						case op < 17:
							var got [][]byte
							got, err = s.Read(t.Context(), id, uint64(rng.IntN(50)), 1+rng.IntN(40), 1+rng.IntN(4096))
							for _, e := range got {
								if !intact(e) {
									t.Errorf("damaged entry read from %s", id)
									return
								}
							}
						case op < 18:
							_, err = s.Seal(t.Context(), id)
						case op < 19:
							err = s.Delete(t.Context(), id)
						default:
							err = s.Sync(t.Context())
						}
						if err != nil && !errors.Is(err, engine.ErrSealed) && !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrOutOfRange) &&
							!(tc.closeEarly && errors.Is(err, engine.ErrClosed)) {
							t.Errorf("unexpected error: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStressCrashReopen alternates bursts of concurrent appends, seals and
// deletes with an in-process crash (abandon) and a reopen that must find
// only intact entries in every segment.
func TestStressCrashReopen(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.SegmentFileBytes = 4096
	o.MaxMappedSegments = 2
	for round := range 4 {
		s, err := Open(dir, o)
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		list, err := s.List(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range list {
			got, err := s.Read(t.Context(), info.ID, 0, int(info.Entries)+1, 1<<30)
			if err != nil || uint64(len(got)) != info.Entries {
				t.Fatalf("round %d: %s: %d entries, %v; stat says %d", round, info.ID, len(got), err, info.Entries)
			}
			for i, e := range got {
				if !intact(e) {
					t.Fatalf("round %d: %s entry %d damaged after reopen", round, info.ID, i)
				}
			}
		}
		deadline := time.Now().Add(300 * time.Millisecond)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for time.Now().Before(deadline) {
					id := engine.SegmentID{Topic: "cr", Segment: uint64(rng.IntN(6))}
					var err error
					switch op := rng.IntN(30); {
					case op < 27:
						batch := make([][]byte, 1+rng.IntN(8))
						for i := range batch {
							batch[i] = selfChecking(rng)
						}
						_, err = s.Append(t.Context(), id, batch)
					case op < 29:
						_, err = s.Seal(t.Context(), id)
					default:
						err = s.Delete(t.Context(), id)
					}
					if err != nil && !errors.Is(err, engine.ErrSealed) && !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("unexpected error: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		abandon(s)
	}
}
