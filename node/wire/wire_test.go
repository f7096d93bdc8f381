package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/walrus-go/walrus/node/consensus"
	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/rpc"
)

func loadGolden(t *testing.T) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[k] = b
	}
	return out
}

type message interface {
	appender
	decoder
}

var entries = [][]byte{[]byte("a"), {}, []byte("hello")}

// goldenMessages are built with the values the recorder used.
func goldenMessages() map[string]message {
	return map[string]message{
		"append_req":                &AppendRequest{Topic: "t1", Entries: entries},
		"get_req":                   &GetRequest{Topic: "t1", Max: 17},
		"get_resp_more":             &GetReply{Entries: entries, More: true},
		"get_resp_empty":            &GetReply{Entries: [][]byte{}},
		"read_req":                  &ReadRequest{Topic: "t1", Segment: 3, Offset: 40, Max: 512},
		"entries_resp":              &EntriesReply{Entries: entries},
		"create_topic_req_defaults": &CreateTopicRequest{Topic: "t1", RF: 0, Ack: -1},
		"create_topic_req_rf3":      &CreateTopicRequest{Topic: "t1", RF: 3, Ack: -1},
		"create_topic_req_ack2":     &CreateTopicRequest{Topic: "t1", RF: 0, Ack: 2},
		"join_req":                  &JoinRequest{ID: 4, Addr: "127.0.0.1:6004"},
		"heartbeat":                 &Heartbeat{ID: 2, LastIndex: 100, Applied: 99, Open: []OpenSegment{{Topic: "t1", Segment: 5, Count: 1234}}, RaftAddr: "127.0.0.1:6002"},
		"heartbeat_disk_full":       &Heartbeat{ID: 2, LastIndex: 100, Applied: 99, RaftAddr: "127.0.0.1:6002", DiskFull: true},
		"heartbeat_delta":           &Heartbeat{ID: 2, LastIndex: 100, Applied: 99, Open: []OpenSegment{{Topic: "t1", Segment: 5, Count: 1235}}, RaftAddr: "127.0.0.1:6002", Delta: true},
		"fence_req":                 &FenceRequest{Topic: "t1", Segment: 5, Min: 1000000},
		"fence_resp_fenced":         &FenceReply{Fenced: true, Count: 77},
		"fence_resp_not_fenced":     &FenceReply{Count: 76},
		"unfence_req":               &SegmentRequest{Topic: "t1", Segment: 5},
		"stat_req":                  &SegmentRequest{Topic: "t1", Segment: 5},
		"count_resp":                &CountReply{Count: 77},
		"remove_node_req":           &NodeRequest{ID: 4},
		"roll_hint_req":             &TopicRequest{Topic: "t1"},
		"replica_append_req":        &ReplicaAppendRequest{Topic: "t1", Segment: 5, Epoch: 2, First: 10, Entries: entries},
		"replica_probe_req":         &ReplicaAppendRequest{Topic: "t1", Segment: 5, Epoch: 1, Entries: [][]byte{}},
		"replica_fence_req":         &ReplicaFenceRequest{Topic: "t1", Segment: 5, Epoch: 2},
		"replica_pull_req":          &ReplicaPullRequest{Topic: "t1", Segment: 5, Count: 300, Sources: []uint64{1, 3}},
		"fetch_req":                 &FetchRequest{Topic: "t1", Segment: 3, Offset: 40, Max: 100, MaxBytes: 1 << 20},
		"fetch_resp":                &FetchReply{Readable: 42, Sealed: true, Entries: entries},
		"group_req_ack":             &GroupRequest{Op: GroupAck, Group: "g1", Topic: "t1", Offsets: []uint64{3, 9}},
		"group_req_read":            &GroupRequest{Op: GroupRead, Group: "g1", Topic: "t1", Max: 1000, AckWaitMs: 30000},
		"group_resp":                &GroupReply{Kind: 4, Body: []byte(`{"a":1}`)},
		"stat_resp":                 &StatReply{Entries: 7, Bytes: 700},
	}
}

// TestGolden: every message encodes to exactly the bytes the pre-split
// node sent, and those bytes decode back to the same message.
func TestGolden(t *testing.T) {
	g := loadGolden(t)
	for name, m := range goldenMessages() {
		want, ok := g[name]
		if !ok {
			t.Fatalf("%s: no golden vector", name)
		}
		if got := m.Append(nil); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: encoded %x, golden %x", name, got, want)
		}
		back := reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
		if err := back.Decode(want); err != nil {
			t.Errorf("%s: decode golden: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("%s: decoded %+v, want %+v", name, back, m)
		}
	}
	// An old sender's heartbeat has no address suffix.
	var hb Heartbeat
	if err := hb.Decode(g["heartbeat_old_no_addr"]); err != nil || hb.ID != 2 || hb.RaftAddr != "" || len(hb.Open) != 0 {
		t.Errorf("old heartbeat: %v %+v", err, hb)
	}
	cmd, err := metadata.Encode(metadata.Rollover{Topic: "t1", Segment: 2, Count: 9, NextLeader: 3, NextReplicas: []uint64{3, 1, 2}})
	if err != nil || !reflect.DeepEqual(cmd, g["propose_req_rollover"]) {
		t.Errorf("propose payload drifted: %x vs %x (%v)", cmd, g["propose_req_rollover"], err)
	}
	if got := EncodeResult(metadata.Result{Status: 1}); !reflect.DeepEqual(got, g["propose_resp_ok"]) {
		t.Errorf("result ok: %x", got)
	}
	if got := EncodeResult(metadata.Result{Status: 2, Err: ErrShortPayload}); !reflect.DeepEqual(got, g["propose_resp_err"]) {
		t.Errorf("result err: %x", got)
	}
	if r, err := DecodeResult(g["propose_resp_err"]); err != nil || r.Status != 2 || !errors.Is(r.Err, metadata.ErrInvalidCommand) {
		t.Errorf("decode result: %+v %v", r, err)
	}
	methods := map[string]byte{"append": MethodAppend, "get": MethodGet, "read": MethodRead, "propose": MethodPropose, "create_topic": MethodCreateTopic, "join": MethodJoin, "heartbeat": MethodHeartbeat, "fence": MethodFence, "unfence": MethodUnfence, "stat": MethodStat, "read_index": MethodReadIndex, "remove_node": MethodRemoveNode, "roll_hint": MethodRollHint, "replica_append": MethodReplicaAppend, "replica_fence": MethodReplicaFence, "replica_pull": MethodReplicaPull, "fetch": MethodFetch, "group": MethodGroup}
	for name, m := range methods {
		if want := g["method_"+name]; len(want) != 1 || want[0] != m {
			t.Errorf("method %s = %d, golden %x", name, m, want)
		}
	}
}

// TestErrorTable: every error kind crosses the wire with the golden code
// and text and comes back as the same kind.
func TestErrorTable(t *testing.T) {
	g := loadGolden(t)
	cases := []struct {
		golden string
		err    error
		kind   error
	}{
		{"err_not_leader", &NotLeaderError{Topic: "t1", Segment: 5, Leader: 2}, ErrRemoteNotLeader},
		{"err_unknown_topic", ErrUnknownTopic, ErrUnknownTopic},
		{"err_fenced", ErrFenced, ErrFenced},
		{"err_not_raft_leader", ErrNotRaftLeader, ErrNotRaftLeader},
		{"err_replica_fenced", ErrReplicaFenced, ErrReplicaFenced},
		{"err_replica_gap", &ReplicaGapError{Count: 12}, ErrReplicaGap},
		{"err_disk_full", fmt.Errorf("append t/1: %w", &DiskFullError{Node: 2, FreeBytes: 3670016, RequiredBytes: 256 << 20}), ErrDiskFull},
	}
	for _, c := range cases {
		var re *rpc.Error
		if !errors.As(ToRPC(c.err), &re) {
			t.Fatalf("%s: not an rpc.Error", c.golden)
		}
		if got := append([]byte{re.Code}, re.Message...); !reflect.DeepEqual(got, g[c.golden]) {
			t.Errorf("%s: %q, golden %q", c.golden, got, g[c.golden])
		}
		if back := FromRPC(re); !errors.Is(back, c.kind) {
			t.Errorf("%s: back as %v, want kind %v", c.golden, back, c.kind)
		}
	}
	if !IsNotRaftLeader(FromRPC(ToRPC(consensus.ErrNotLeader))) {
		t.Error("consensus.ErrNotLeader does not cross as not-raft-leader")
	}
	if !IsNotLeader(FromRPC(ToRPC(&NotLeaderError{}))) {
		t.Error("NotLeaderError does not cross as not-leader")
	}
	relayed := fmt.Errorf("read from node 3: %w", FromRPC(ToRPC(&NotLeaderError{Topic: "t"})))
	if !IsNotLeader(FromRPC(ToRPC(relayed))) {
		t.Error("a not-leader error relayed through a second node loses its kind")
	}
	df := &DiskFullError{Node: 7, FreeBytes: 123456789, RequiredBytes: 268435456}
	back, ok := errors.AsType[*DiskFullError](FromRPC(ToRPC(df)))
	if !ok || back.Error() != df.Error() || back.Node != 7 {
		t.Errorf("DiskFullError crossed as %v, want %q", back, df.Error())
	}
	if !errors.Is(FromRPC(ToRPC(ErrDiskFull)), ErrDiskFull) {
		t.Error("a bare ErrDiskFull does not cross as disk full")
	}
	plain := errors.New("disk on fire")
	if ToRPC(plain) != plain || FromRPC(plain) != plain {
		t.Error("an unmapped error must pass through unchanged")
	}
}

func TestDecodeRejectsTruncation(t *testing.T) {
	for name, m := range goldenMessages() {
		b := m.Append(nil)
		for cut := range len(b) {
			back := reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
			err := back.Decode(b[:cut])
			if err == nil {
				// Optional trailing fields may be cut cleanly.
				continue
			}
			if !errors.Is(err, ErrShortPayload) {
				t.Errorf("%s cut at %d: %v is not ErrShortPayload", name, cut, err)
			}
		}
	}
}

// TestAppendPartsEncoding: an append encoded from parts straight into a
// frame is the AppendRequest of the parts' entries in order.
func TestAppendPartsEncoding(t *testing.T) {
	parts := [][][]byte{{[]byte("a"), []byte("")}, nil, {[]byte("ccc")}}
	enc := appendParts{topic: "t", parts: parts}
	got := enc.AppendTo([]byte("prefix"))
	want := (&AppendRequest{Topic: "t", Entries: [][]byte{[]byte("a"), []byte(""), []byte("ccc")}}).Append(nil)
	if string(got) != "prefix"+string(want) || enc.EncodedLen() != len(want) {
		t.Fatalf("encoded %q (len %d), want %q", got, enc.EncodedLen(), want)
	}
	var req AppendRequest
	if err := req.Decode(got[len("prefix"):]); err != nil || len(req.Entries) != 3 || string(req.Entries[2]) != "ccc" {
		t.Fatalf("decoded %+v, %v", req, err)
	}
}
func TestFormatBytes(t *testing.T) {
	cases := []struct {
		name string
		n    uint64
		want string
	}{
		{"bytes", 512, "512 B"},
		{"kib", 1536, "1.5 KiB"},
		{"mib", 256 << 20, "256.0 MiB"},
		{"gib", 5<<30 + 1<<29, "5.5 GiB"},
		{"zero", 0, "0 B"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := FormatBytes(c.n)
			if got != c.want {
				t.Fatalf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
			}
			back, ok := parseBytes(got)
			if !ok || FormatBytes(back) != got {
				t.Fatalf("parseBytes(%q) = %d, %v", got, back, ok)
			}
		})
	}
}

func FuzzParseDiskFull(f *testing.F) {
	f.Add("disk full on node 2: 3.5 MiB free, 256.0 MiB required")
	f.Add("disk full on node 1: 0 B free, 1.0 KiB required")
	f.Fuzz(func(t *testing.T, msg string) {
		e, ok := parseDiskFull(msg)
		if !ok {
			return
		}
		again, ok := parseDiskFull(e.Error())
		if !ok || again.Error() != e.Error() {
			t.Fatalf("%q: reparse of %q gave %v", msg, e.Error(), again)
		}
	})
}
