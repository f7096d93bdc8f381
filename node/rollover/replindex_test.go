package rollover

import (
	"slices"
	"testing"

	"github.com/walrus-go/walrus/node/metadata"
)

func TestReplicaIndexSuspects(t *testing.T) {
	f := metadata.NewFSM()
	apply := func(c metadata.Command) {
		t.Helper()
		if r := f.ApplyCommand(c); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	apply(metadata.CreateTopic{Topic: "a", Leader: 1, Replicas: []uint64{1, 2, 3}, ReplicationFactor: 3})
	apply(metadata.CreateTopic{Topic: "b", Leader: 2, Replicas: []uint64{2, 3}, ReplicationFactor: 3})
	apply(metadata.CreateTopic{Topic: "c", Leader: 4, Replicas: []uint64{4, 5, 6}, ReplicationFactor: 3})
	apply(metadata.CreateTopic{Topic: "solo", Leader: 1, ReplicationFactor: 1})
	var x replicaIndex
	none := func(uint64) bool { return false }
	if got := x.suspects(f, 3, none); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("all alive, 3 voters: suspects %v, want [b] (short)", got)
	}
	if got := x.suspects(f, 2, none); len(got) != 0 {
		t.Fatalf("2 voters: suspects %v, want none", got)
	}
	if got := x.suspects(f, 3, func(id uint64) bool { return id == 1 }); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("node 1 down: suspects %v, want [a b]", got)
	}
	// A change moves c away from node 5; deleting a drops it.
	apply(metadata.Rollover{Topic: "c", Segment: 1, Count: 1, NextLeader: 4, NextReplicas: []uint64{4, 6, 7}})
	apply(metadata.SetReplicas{Topic: "c", Segment: 1, Replicas: []uint64{4, 6, 7}})
	apply(metadata.DeleteTopic{Topic: "a"})
	if got := x.suspects(f, 3, func(id uint64) bool { return id == 5 || id == 1 }); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after changes: suspects %v, want [b]", got)
	}
}
