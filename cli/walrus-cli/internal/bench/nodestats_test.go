package bench

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes{node_id="3"} 1.2345e+08
walrus_raft_is_leader{node_id="3"} 1
walrus_data_dir_bytes{node_id="3"} 4096
walrus_client_requests_total{command="PUT",node_id="3",result="ok"} 17
walrus_data_dir_bytes{node_id="3"} 1
`
	vals, id, err := parseMetrics(strings.NewReader(text), []string{"process_resident_memory_bytes", "walrus_raft_is_leader", "walrus_data_dir_bytes", "walrus_topics"})
	if err != nil {
		t.Fatal(err)
	}
	if id != "3" || vals["process_resident_memory_bytes"] != 1.2345e8 || vals["walrus_raft_is_leader"] != 1 || vals["walrus_data_dir_bytes"] != 4096 {
		t.Fatalf("got %v, node %q", vals, id)
	}
	if _, ok := vals["walrus_topics"]; ok {
		t.Fatalf("a missing series has a value: %v", vals)
	}
	if _, _, err := parseMetrics(strings.NewReader("walrus_topics{node_id=\"1\"} many\n"), []string{"walrus_topics"}); err == nil {
		t.Fatal("a bad value parsed")
	}
}
