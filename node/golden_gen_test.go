package node

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/rpc"
)

// TestRecordWireGolden records the byte encoding of every internal RPC
// message as today's code produces it (run once before the split).
func TestRecordWireGolden(t *testing.T) {
	if os.Getenv("WALRUS_RECORD_GOLDEN") == "" {
		t.Skip("set WALRUS_RECORD_GOLDEN=1")
	}
	out := map[string]string{}
	put := func(name string, b []byte) { out[name] = hex.EncodeToString(b) }
	entries := [][]byte{[]byte("a"), {}, []byte("hello")}
	var e enc
	e.str("t1")
	e.list(entries)
	put("append_req", e.b)
	e = enc{}
	e.str("t1")
	e.u32(17)
	put("get_req", e.b)
	e = enc{}
	e.list(entries)
	e.b = append(e.b, 1)
	put("get_resp_more", e.b)
	e = enc{}
	e.list(nil)
	e.b = append(e.b, 0)
	put("get_resp_empty", e.b)
	e = enc{}
	e.str("t1")
	e.u64(3)
	e.u64(40)
	e.u32(512)
	put("read_req", e.b)
	e = enc{}
	e.list(entries)
	put("entries_resp", e.b)
	cmd, err := metadata.Encode(metadata.Rollover{Topic: "t1", Segment: 2, Count: 9, NextLeader: 3, NextReplicas: []uint64{3, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	put("propose_req_rollover", cmd)
	put("propose_resp_ok", encodeResult(metadata.Result{Status: 1}))
	put("propose_resp_err", encodeResult(metadata.Result{Status: 2, Err: errShortPayload}))
	e = enc{}
	e.str("t1")
	put("create_topic_req_defaults", e.b)
	e = enc{}
	e.str("t1")
	e.u32(3)
	minus := int32(-1)
	e.u32(uint32(minus))
	put("create_topic_req_rf3", e.b)
	e = enc{}
	e.str("t1")
	e.u32(0)
	e.u32(uint32(int32(2)))
	put("create_topic_req_ack2", e.b)
	e = enc{}
	e.u64(4)
	e.str("127.0.0.1:6004")
	put("join_req", e.b)
	// heartbeat: one open segment (map order is irrelevant with one)
	e = enc{}
	e.u64(2)
	e.u64(100)
	e.u64(99)
	e.u32(1)
	e.str("t1")
	e.u64(5)
	e.u64(1234)
	e.str("127.0.0.1:6002")
	put("heartbeat", e.b)
	if id, p, err := decodeHeartbeat(e.b); err != nil || id != 2 || p.Open[segKey{"t1", 5}] != 1234 || p.RaftAddr != "127.0.0.1:6002" {
		t.Fatalf("heartbeat round trip: %v %v %+v", err, id, p)
	}
	e = enc{}
	e.u64(2)
	e.u64(100)
	e.u64(99)
	e.u32(0)
	put("heartbeat_old_no_addr", e.b)
	e = enc{}
	e.str("t1")
	e.u64(5)
	e.u64(1000000)
	put("fence_req", e.b)
	e = enc{}
	e.b = append(e.b, 1)
	e.u64(77)
	put("fence_resp_fenced", e.b)
	e = enc{}
	e.b = append(e.b, 0)
	e.u64(76)
	put("fence_resp_not_fenced", e.b)
	e = enc{}
	e.str("t1")
	e.u64(5)
	put("unfence_req", e.b)
	put("stat_req", e.b)
	e = enc{}
	e.u64(77)
	put("count_resp", e.b)
	e = enc{}
	e.u64(4)
	put("remove_node_req", e.b)
	e = enc{}
	e.str("t1")
	put("roll_hint_req", e.b)
	put("replica_append_req", encodeReplicaAppend("t1", 5, 2, 10, entries))
	put("replica_probe_req", encodeReplicaAppend("t1", 5, 1, 0, nil))
	e = enc{}
	e.str("t1")
	e.u64(5)
	e.u64(2)
	put("replica_fence_req", e.b)
	e = enc{}
	e.str("t1")
	e.u64(5)
	e.u64(300)
	e.u32(2)
	e.u64(1)
	e.u64(3)
	put("replica_pull_req", e.b)
	// errors as they cross the wire
	errs := map[string]error{
		"err_not_leader":      toRPC(&NotLeaderError{Topic: "t1", Segment: 5, Leader: 2}),
		"err_unknown_topic":   toRPC(ErrUnknownTopic),
		"err_fenced":          toRPC(ErrFenced),
		"err_not_raft_leader": toRPC(errRemoteNotRaftLeader),
		"err_replica_fenced":  replicaToRPC(errReplicaFenced),
		"err_replica_gap":     replicaToRPC(&replicaGapError{Count: 12}),
	}
	for name, err := range errs {
		re := err.(*rpc.Error)
		put(name, append([]byte{re.Code}, re.Message...))
	}
	methods := map[string]byte{"append": methodAppend, "get": methodGet, "read": methodRead, "propose": methodPropose, "create_topic": methodCreateTopic, "join": methodJoin, "heartbeat": methodHeartbeat, "fence": methodFence, "unfence": methodUnfence, "stat": methodStat, "read_index": methodReadIndex, "remove_node": methodRemoveNode, "roll_hint": methodRollHint, "replica_append": methodReplicaAppend, "replica_fence": methodReplicaFence, "replica_pull": methodReplicaPull}
	for name, m := range methods {
		put("method_"+name, []byte{m})
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile("wire/testdata/golden.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = time.Second
}
