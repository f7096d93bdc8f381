package placement

import (
	"slices"
	"testing"
)

func TestNextLeader(t *testing.T) {
	cases := []struct {
		voters []uint64
		cur    uint64
		want   uint64
	}{
		{nil, 2, 2},
		{[]uint64{1}, 1, 1},
		{[]uint64{1, 2, 3}, 1, 2},
		{[]uint64{3, 1, 2}, 2, 3},
		{[]uint64{1, 2, 3}, 3, 1},
		{[]uint64{2, 5}, 4, 5},
		{[]uint64{2, 5}, 9, 2},
	}
	for _, c := range cases {
		if got := NextLeader(c.voters, c.cur); got != c.want {
			t.Errorf("NextLeader(%v, %d) = %d, want %d", c.voters, c.cur, got, c.want)
		}
	}
}

func TestFirstLeader(t *testing.T) {
	if got := FirstLeader(nil, 5, 7); got != 7 {
		t.Errorf("no live voters: %d", got)
	}
	live := []uint64{1, 2, 3}
	for topics, want := range []uint64{1, 2, 3, 1} {
		if got := FirstLeader(live, topics, 9); got != want {
			t.Errorf("topics %d: %d, want %d", topics, got, want)
		}
	}
}

func TestReplicas(t *testing.T) {
	cases := []struct {
		leader uint64
		live   []uint64
		rf     int
		want   []uint64
	}{
		{1, []uint64{1, 2, 3}, 3, []uint64{1, 2, 3}},
		{2, []uint64{1, 2, 3}, 3, []uint64{2, 3, 1}},
		{3, []uint64{1, 2, 3}, 2, []uint64{3, 1}},
		{2, []uint64{1, 3}, 3, []uint64{2, 3, 1}}, // leader not in live
		{1, []uint64{1}, 3, []uint64{1}},          // short set
		{1, []uint64{1, 2, 3, 4, 5}, 1, []uint64{1}},
	}
	for _, c := range cases {
		if got := Replicas(c.leader, c.live, c.rf); !slices.Equal(got, c.want) {
			t.Errorf("Replicas(%d, %v, %d) = %v, want %v", c.leader, c.live, c.rf, got, c.want)
		}
	}
	if NextReplicas(1, 1, []uint64{1, 2}) != nil {
		t.Error("rf 1 must have no replica set")
	}
	if got := NextReplicas(2, 1, []uint64{1, 2}); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("NextReplicas rf 2: %v", got)
	}
}

func TestConfirmed(t *testing.T) {
	cases := []struct {
		counts []uint64
		ack    int
		want   uint64
	}{
		{nil, 2, 0},
		{[]uint64{10}, 1, 10},
		{[]uint64{10, 4, 7}, 1, 10},
		{[]uint64{10, 4, 7}, 2, 7},
		{[]uint64{10, 4, 7}, 3, 4},
		{[]uint64{10, 4, 7}, 9, 4}, // more than the set: all of it
		{[]uint64{5, 5, 0}, 2, 5},
		{[]uint64{5, 0}, 0, 5}, // ack 0 counts as 1
	}
	for _, c := range cases {
		if got := Confirmed(c.counts, c.ack); got != c.want {
			t.Errorf("Confirmed(%v, %d) = %d, want %d", c.counts, c.ack, got, c.want)
		}
	}
}

func TestRecoveryQuorum(t *testing.T) {
	cases := []struct{ set, ack, want int }{
		{3, 2, 2}, {3, 3, 1}, {3, 1, 3}, {5, 3, 3}, {5, 2, 4}, {1, 1, 1}, {2, 0, 2},
	}
	for _, c := range cases {
		if got := RecoveryQuorum(c.set, c.ack); got != c.want {
			t.Errorf("RecoveryQuorum(%d, %d) = %d, want %d", c.set, c.ack, got, c.want)
		}
	}
}

// TestRecoveryQuorumCoversAcks checks the claim behind RecoveryQuorum
// exhaustively for small sets: every ack-sized group meets every group of
// RecoveryQuorum members.
func TestRecoveryQuorumCoversAcks(t *testing.T) {
	for n := 1; n <= 7; n++ {
		for ack := 1; ack <= n; ack++ {
			q := RecoveryQuorum(n, ack)
			for a := 0; a < 1<<n; a++ {
				if popcount(a) != ack {
					continue
				}
				for r := 0; r < 1<<n; r++ {
					if popcount(r) == q && a&r == 0 {
						t.Fatalf("n=%d ack=%d: groups %b and %b are disjoint", n, ack, a, r)
					}
				}
			}
		}
	}
}

func popcount(x int) int {
	c := 0
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func TestSealPoint(t *testing.T) {
	cases := []struct {
		answers   []Answer
		oldLeader uint64
		count     uint64
		source    uint64
		ok        bool
	}{
		{nil, 1, 0, 0, false},
		{[]Answer{{2, 5}, {3, 7}}, 1, 7, 3, true},
		{[]Answer{{1, 7}, {3, 7}}, 1, 7, 3, true}, // prefer not the old leader
		{[]Answer{{1, 9}, {3, 7}}, 1, 9, 1, true}, // only the old leader has it
		{[]Answer{{2, 0}, {3, 0}}, 1, 0, 2, true},
	}
	for _, c := range cases {
		count, source, ok := SealPoint(c.answers, c.oldLeader)
		if count != c.count || source != c.source || ok != c.ok {
			t.Errorf("SealPoint(%v, %d) = %d, %d, %v; want %d, %d, %v", c.answers, c.oldLeader, count, source, ok, c.count, c.source, c.ok)
		}
	}
}
