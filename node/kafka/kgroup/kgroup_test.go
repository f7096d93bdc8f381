package kgroup

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// stable brings ids into a Stable group g and returns the generation.
func (e *env) stable(g string, ids []string, reqs func(id string) *kmsg.JoinGroupRequest) (int32, string) {
	t := e.t
	t.Helper()
	start := e.gen(g)
	var chs []chan *kmsg.JoinGroupResponse
	for _, id := range ids {
		chs = append(chs, e.join(reqs(id)))
	}
	e.waitJoined(g, len(ids), start)
	e.clock.Advance(100 * time.Millisecond)
	var leader string
	var gen int32
	var leaderResp *kmsg.JoinGroupResponse
	for _, ch := range chs {
		r := recv(t, ch)
		if r.ErrorCode != 0 {
			t.Fatalf("join: code %d", r.ErrorCode)
		}
		leader, gen = r.LeaderID, r.Generation
		if r.MemberID == r.LeaderID {
			leaderResp = r
		}
		if *r.Protocol != "cooperative-sticky" {
			t.Fatalf("protocol %q, want cooperative-sticky", *r.Protocol)
		}
	}
	if leaderResp == nil || len(leaderResp.Members) != len(ids) {
		t.Fatalf("leader answer %+v, want %d members", leaderResp, len(ids))
	}
	if s := e.state(g); s != "CompletingRebalance" {
		t.Fatalf("state %s after join", s)
	}
	var syncs []chan *kmsg.SyncGroupResponse
	for _, id := range ids {
		if id == leader {
			continue
		}
		ch := make(chan *kmsg.SyncGroupResponse, 1)
		req := &kmsg.SyncGroupRequest{Version: 5, Group: g, Generation: gen, MemberID: id}
		go func() { ch <- e.c.SyncGroup(context.Background(), req) }()
		syncs = append(syncs, ch)
	}
	lreq := &kmsg.SyncGroupRequest{Version: 5, Group: g, Generation: gen, MemberID: leader,
		ProtocolType: kmsg.StringPtr("consumer"), Protocol: kmsg.StringPtr("cooperative-sticky")}
	for _, id := range ids {
		lreq.GroupAssignment = append(lreq.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(id)})
	}
	if r := e.c.SyncGroup(context.Background(), lreq); r.ErrorCode != 0 || string(r.MemberAssignment) != leader {
		t.Fatalf("leader sync: code %d assignment %q", r.ErrorCode, r.MemberAssignment)
	}
	for _, ch := range syncs {
		if r := recv(t, ch); r.ErrorCode != 0 || len(r.MemberAssignment) == 0 {
			t.Fatalf("follower sync: code %d assignment %q", r.ErrorCode, r.MemberAssignment)
		}
	}
	if s := e.state(g); s != "Stable" {
		t.Fatalf("state %s after sync", s)
	}
	return gen, leader
}

func (e *env) hb(g, id string, gen int32) int16 {
	return e.c.Heartbeat(&kmsg.HeartbeatRequest{Version: 4, Group: g, MemberID: id, Generation: gen}).ErrorCode
}

func (e *env) commit(g, id string, gen int32, off int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 8, g, id, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: off, Metadata: kmsg.StringPtr("m")}}}}
	return e.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

func TestThreeMembersRebalanceOnLeave(t *testing.T) {
	e := newEnv(t)
	ids := []string{e.memberID("g"), e.memberID("g"), e.memberID("g")}
	gen, leader := e.stable("g", ids, func(id string) *kmsg.JoinGroupRequest { return joinReq("g", id) })
	if gen != 1 {
		t.Fatalf("generation %d, want 1", gen)
	}
	for _, id := range ids {
		if code := e.hb("g", id, gen); code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	if code := e.hb("g", "nobody", gen); code != errUnknownMemberID {
		t.Fatalf("unknown heartbeat: %d", code)
	}
	if code := e.hb("g", ids[0], gen+5); code != errIllegalGeneration {
		t.Fatalf("stale heartbeat: %d", code)
	}
	if code := e.commit("g", ids[0], gen, 10); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	var leaving string
	var rest []string
	for _, id := range ids {
		if id != leader && leaving == "" {
			leaving = id
		} else {
			rest = append(rest, id)
		}
	}
	lr := e.c.LeaveGroup(&kmsg.LeaveGroupRequest{Version: 5, Group: "g", Members: []kmsg.LeaveGroupRequestMember{{MemberID: leaving}}})
	if lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %d", lr.Members[0].ErrorCode)
	}
	if s := e.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s after leave", s)
	}
	if code := e.hb("g", rest[0], gen); code != errRebalanceInProgress {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	gen2, _ := e.stable("g", rest, func(id string) *kmsg.JoinGroupRequest { return joinReq("g", id) })
	if gen2 != gen+1 {
		t.Fatalf("generation %d, want %d", gen2, gen+1)
	}
	if code := e.commit("g", rest[0], gen, 11); code != errIllegalGeneration {
		t.Fatalf("stale generation commit: %d", code)
	}
	if code := e.commit("g", rest[0], gen2, 11); code != 0 {
		t.Fatalf("commit: %d", code)
	}
}

func TestSessionTimeoutExpires(t *testing.T) {
	e := newEnv(t)
	id := e.memberID("g")
	gen, _ := e.stable("g", []string{id}, func(id string) *kmsg.JoinGroupRequest { return joinReq("g", id) })
	e.clock.Advance(40 * time.Second)
	if code := e.hb("g", id, gen); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	e.clock.Advance(46 * time.Second)
	if code := e.hb("g", id, gen); code != errUnknownMemberID {
		t.Fatalf("heartbeat after session timeout: %d", code)
	}
	if s := e.state("g"); s != "Dead" {
		t.Fatalf("state %s, want Dead (no members, no offsets)", s)
	}
}

func TestRebalanceTimeoutKicksMember(t *testing.T) {
	e := newEnv(t)
	long := func(id string) *kmsg.JoinGroupRequest {
		r := joinReq("g", id)
		r.SessionTimeoutMillis = 300000
		return r
	}
	a, b := e.memberID("g"), e.memberID("g")
	e.stable("g", []string{a, b}, long)
	c := e.memberID("g")
	chA, chC := e.join(long(a)), e.join(long(c))
	e.waitJoined("g", 2, 1)
	e.clock.Advance(59 * time.Second)
	if s := e.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s before the rebalance timeout", s)
	}
	e.clock.Advance(2 * time.Second)
	ra, rc := recv(t, chA), recv(t, chC)
	if ra.ErrorCode != 0 || rc.ErrorCode != 0 || ra.Generation != 2 {
		t.Fatalf("joins: %d %d gen %d", ra.ErrorCode, rc.ErrorCode, ra.Generation)
	}
	if code := e.hb("g", b, 1); code != errUnknownMemberID {
		t.Fatalf("kicked member heartbeat: %d", code)
	}
}

func TestCloseUnblocksJoin(t *testing.T) {
	e := newEnv(t)
	ch := e.join(joinReq("g", e.memberID("g")))
	e.waitJoined("g", 1, 0)
	e.c.Close()
	if r := recv(t, ch); r.ErrorCode != errCoordinatorNotAvail {
		t.Fatalf("join after close: %d", r.ErrorCode)
	}
}

func TestJoinValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		mod  func(r *kmsg.JoinGroupRequest)
		want int16
	}{
		{"empty group", func(r *kmsg.JoinGroupRequest) { r.Group = "" }, errInvalidGroupID},
		{"short session", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 10 }, errInvalidSessionTimeout},
		{"no protocols", func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }, errInconsistentProtocol},
		{"unknown member", func(r *kmsg.JoinGroupRequest) { r.MemberID = "ghost" }, errUnknownMemberID},
		{"first join v4+", func(r *kmsg.JoinGroupRequest) {}, errMemberIDRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := joinReq("v", "")
			tc.mod(r)
			if got := e.c.JoinGroup(context.Background(), r, "kgo", "h").ErrorCode; got != tc.want {
				t.Fatalf("code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOffsetsRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if code := e.commit("simple", "", -1, 42); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	f := e.c.OffsetFetch(ctx, &kmsg.OffsetFetchRequest{Version: 7, Group: "simple",
		Topics: []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}})
	ps := f.Topics[0].Partitions
	if ps[0].Offset != 42 || *ps[0].Metadata != "m" || ps[1].Offset != -1 {
		t.Fatalf("fetch: %+v", ps)
	}
	f = e.c.OffsetFetch(ctx, &kmsg.OffsetFetchRequest{Version: 8, Groups: []kmsg.OffsetFetchRequestGroup{{Group: "simple"}, {Group: "other"}}})
	if len(f.Groups) != 2 || f.Groups[0].Topics[0].Partitions[0].Offset != 42 || len(f.Groups[1].Topics) != 0 {
		t.Fatalf("v8 fetch: %+v", f.Groups)
	}
	d := e.c.OffsetDelete(ctx, &kmsg.OffsetDeleteRequest{Group: "simple", Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}})
	if d.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete: %d", d.Topics[0].Partitions[0].ErrorCode)
	}
	f = e.c.OffsetFetch(ctx, &kmsg.OffsetFetchRequest{Version: 7, Group: "simple"})
	if len(f.Topics) != 0 {
		t.Fatalf("fetch after delete: %+v", f.Topics)
	}
}

func TestGroupsAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.commit("idle", "", -1, 1)
	id := e.memberID("busy")
	e.stable("busy", []string{id}, func(id string) *kmsg.JoinGroupRequest { return joinReq("busy", id) })
	l := e.c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: 4, StatesFilter: []string{"Stable"}})
	if len(l.Groups) != 1 || l.Groups[0].Group != "busy" {
		t.Fatalf("list Stable: %+v", l.Groups)
	}
	l = e.c.ListGroups(ctx, &kmsg.ListGroupsRequest{Version: 4})
	if len(l.Groups) != 2 || l.Groups[1].GroupState != "Empty" {
		t.Fatalf("list: %+v", l.Groups)
	}
	for _, tc := range []struct {
		group string
		want  int16
	}{{"busy", errNonEmptyGroup}, {"idle", 0}, {"idle", errGroupIDNotFound}, {"", errInvalidGroupID}} {
		r := e.c.DeleteGroups(ctx, &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{tc.group}})
		if r.Groups[0].ErrorCode != tc.want {
			t.Fatalf("delete %q: %d, want %d", tc.group, r.Groups[0].ErrorCode, tc.want)
		}
	}
}

func (e *env) gen(g string) int32 {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if gr := e.c.groups[g]; gr != nil {
		return gr.generation
	}
	return 0
}
