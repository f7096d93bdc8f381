// Package placement is the pure decision logic of the cluster: which node
// leads the next segment, which nodes replicate it, how many replicas an
// acknowledgement and a recovery need, and at which count a recovery
// seals. It does no I/O and keeps no state, so every rule is tested alone.
package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// MaxReplicationFactor bounds replication_factor and a topic's rf=.
const MaxReplicationFactor = 7

// NextLeader is the next voter in id order after cur (wrapping round);
// cur itself when there are no voters.
func NextLeader(voters []uint64, cur uint64) uint64 {
	if len(voters) == 0 {
		return cur
	}
	v := slices.Sorted(slices.Values(voters))
	for _, id := range v {
		if id > cur {
			return id
		}
	}
	return v[0]
}

// FirstLeader spreads new topics round-robin over the live voters (by the
// number of topics that exist); self when none is known live.
func FirstLeader(live []uint64, topics int, self uint64) uint64 {
	if len(live) == 0 {
		return self
	}
	return live[topics%len(live)]
}

// Replicas picks a segment's replica set: the leader first, then the next
// live voters in id order after it (wrapping round), rf members at most.
func Replicas(leader uint64, live []uint64, rf int) []uint64 {
	v := slices.Clone(live)
	if !slices.Contains(v, leader) {
		v = append(v, leader)
	}
	slices.Sort(v)
	idx := slices.Index(v, leader)
	out := []uint64{leader}
	for i := 1; len(out) < rf && i < len(v); i++ {
		out = append(out, v[(idx+i)%len(v)])
	}
	return out
}

// NextReplicas is the replica set of a topic's next segment led by leader,
// or nil for an unreplicated topic (rf <= 1).
func NextReplicas(rf int, leader uint64, live []uint64) []uint64 {
	if rf <= 1 {
		return nil
	}
	return Replicas(leader, live, rf)
}

// Confirmed is the count held by at least ack of the replicas whose counts
// are given (the leader's included): the ack-th highest. Every entry below
// it is acknowledged.
func Confirmed(counts []uint64, ack int) uint64 {
	if len(counts) == 0 {
		return 0
	}
	c := slices.Clone(counts)
	slices.SortFunc(c, func(a, b uint64) int { return cmp.Compare(b, a) })
	return c[min(max(ack, 1), len(c))-1]
}

// ErrUnrecoverable: a replication factor and ack quorum whose segments
// could not fail over without the dead leader.
var ErrUnrecoverable = errors.New("ack quorum 1 with a replication factor above 1: a leader acknowledges alone, so its failure would lose acknowledged entries or block the topic until it returns; use ack >= 2 (or rf 1)")

// CheckReplication refuses the settings recovery cannot honour: with
// ack 1 and more than one replica, the entries the dead leader
// acknowledged may be on no other replica, and a recovery would need every
// replica (the dead one included) to answer (RecoveryQuorum). ack 0 means
// a majority.
func CheckReplication(rf, ack int) error {
	if rf > 1 && ack == 1 {
		return fmt.Errorf("rf=%d ack=1: %w", rf, ErrUnrecoverable)
	}
	return nil
}

// RecoveryQuorum is how many replicas of a set must answer a recovery's
// fence so that one of them holds every acknowledged entry: any ack-sized
// group and any group of size-ack+1 members share a member.
func RecoveryQuorum(setSize, ack int) int {
	return setSize - max(ack, 1) + 1
}

// Answer is one replica's count, as reported to a recovery's fence.
type Answer struct {
	ID    uint64
	Count uint64
}

// SealPoint is where a recovery seals: the highest count answered, and the
// replica to copy it from, preferring one other than the old leader (whose
// reads of the open segment are bounded by what it saw confirmed). ok is
// false when nobody answered.
func SealPoint(answers []Answer, oldLeader uint64) (count, source uint64, ok bool) {
	if len(answers) == 0 {
		return 0, 0, false
	}
	for _, a := range answers {
		if a.Count > count {
			count = a.Count
		}
	}
	source = 0
	for _, a := range answers {
		if a.Count != count {
			continue
		}
		if source == 0 || (source == oldLeader && a.ID != oldLeader) {
			source = a.ID
		}
	}
	return count, source, true
}
