package wire

import (
	"reflect"
	"testing"
)

// fuzzDecoder checks that a decoder never panics or over-allocates, and
// that whatever it accepts re-encodes to something that decodes the same.
func fuzzDecoder[T any, P interface {
	*T
	message
}](f *testing.F, seeds ...message) {
	for _, s := range seeds {
		f.Add(s.Append(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m T
		if P(&m).Decode(b) != nil {
			return
		}
		var again T
		if err := P(&again).Decode(P(&m).Append(nil)); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(again)) {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}

// normalize makes empty and nil lists compare equal.
func normalize(v any) any {
	rv := reflect.ValueOf(&v).Elem().Elem()
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	for i := range cp.NumField() {
		fv := cp.Field(i)
		if fv.Kind() == reflect.Slice && fv.Len() == 0 {
			fv.Set(reflect.Zero(fv.Type()))
		}
	}
	return cp.Interface()
}

func FuzzAppendRequest(f *testing.F) {
	fuzzDecoder[AppendRequest](f, goldenMessages()["append_req"])
}
func FuzzGetRequest(f *testing.F) { fuzzDecoder[GetRequest](f, goldenMessages()["get_req"]) }
func FuzzGetReply(f *testing.F)   { fuzzDecoder[GetReply](f, goldenMessages()["get_resp_more"]) }
func FuzzReadRequest(f *testing.F) {
	fuzzDecoder[ReadRequest](f, goldenMessages()["read_req"])
}
func FuzzEntriesReply(f *testing.F) {
	fuzzDecoder[EntriesReply](f, goldenMessages()["entries_resp"])
}
func FuzzCreateTopicRequest(f *testing.F) {
	g := goldenMessages()
	fuzzDecoder[CreateTopicRequest](f, g["create_topic_req_defaults"], g["create_topic_req_rf3"])
}
func FuzzJoinRequest(f *testing.F) { fuzzDecoder[JoinRequest](f, goldenMessages()["join_req"]) }
func FuzzHeartbeat(f *testing.F)   { fuzzDecoder[Heartbeat](f, goldenMessages()["heartbeat"]) }
func FuzzFenceRequest(f *testing.F) {
	fuzzDecoder[FenceRequest](f, goldenMessages()["fence_req"])
}
func FuzzFenceReply(f *testing.F) {
	fuzzDecoder[FenceReply](f, goldenMessages()["fence_resp_fenced"])
}
func FuzzSegmentRequest(f *testing.F) {
	fuzzDecoder[SegmentRequest](f, goldenMessages()["unfence_req"])
}
func FuzzCountReply(f *testing.F)  { fuzzDecoder[CountReply](f, goldenMessages()["count_resp"]) }
func FuzzNodeRequest(f *testing.F) { fuzzDecoder[NodeRequest](f, goldenMessages()["remove_node_req"]) }
func FuzzTopicRequest(f *testing.F) {
	fuzzDecoder[TopicRequest](f, goldenMessages()["roll_hint_req"])
}
func FuzzReplicaAppendRequest(f *testing.F) {
	fuzzDecoder[ReplicaAppendRequest](f, goldenMessages()["replica_append_req"])
}
func FuzzReplicaFenceRequest(f *testing.F) {
	fuzzDecoder[ReplicaFenceRequest](f, goldenMessages()["replica_fence_req"])
}
func FuzzReplicaPullRequest(f *testing.F) {
	fuzzDecoder[ReplicaPullRequest](f, goldenMessages()["replica_pull_req"])
}

func FuzzFetchRequest(f *testing.F) {
	fuzzDecoder[FetchRequest](f, goldenMessages()["fetch_req"])
}
func FuzzFetchReply(f *testing.F) { fuzzDecoder[FetchReply](f, goldenMessages()["fetch_resp"]) }
func FuzzGroupRequest(f *testing.F) {
	g := goldenMessages()
	fuzzDecoder[GroupRequest](f, g["group_req_ack"], g["group_req_read"])
}
func FuzzGroupReply(f *testing.F) { fuzzDecoder[GroupReply](f, goldenMessages()["group_resp"]) }
func FuzzStatReply(f *testing.F)  { fuzzDecoder[StatReply](f, goldenMessages()["stat_resp"]) }
