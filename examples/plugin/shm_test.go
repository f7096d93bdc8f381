//go:build linux

package main

import (
	"context"
	"testing"
	"time"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/plugins/pluginhost"
)

// TestAppendsTakeTheSharedRing: both plugins, built with this SDK, take
// small appends through the shared-memory ring on Linux, so the crash tests
// above (unchanged) SIGKILL plugins with appends in flight on the ring.
func TestAppendsTakeTheSharedRing(t *testing.T) {
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			s, err := openPlugin(ctx, p.path, t.TempDir(), pluginhost.Config{}, "-durability", "none")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range 10 {
				if first, err := s.Append(ctx, engine.SegmentID{Topic: "ring", Segment: 1}, [][]byte{{byte(i)}}); err != nil || first != uint64(i) {
					t.Fatalf("append %d: first=%d err=%v", i, first, err)
				}
			}
			if !s.SharedMemory() {
				t.Fatal("appends did not take the shared-memory ring")
			}
		})
	}
}
