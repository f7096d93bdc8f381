package clicmd

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestFindClientAddrs(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"none", `{"id":1,"membership_config":{"membership":{"nodes":{"1":"127.0.0.1:6001"}}}}`, nil},
		{"top level", `{"id":1,"client_addrs":{"2":"127.0.0.1:9092","1":"127.0.0.1:9091"}}`,
			[]string{"127.0.0.1:9091", "127.0.0.1:9092"}},
		{"in membership", `{"membership_config":{"membership":{"nodes":{"1":"a:1"},"client_nodes":{"10":"h:10","9":"h:9"}}}}`,
			[]string{"h:9", "h:10"}},
		{"not addresses", `{"client_count":{"1":3}}`, nil},
		{"not json", `nope`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := findClientAddrs([]byte(tc.body))
			var list []string
			if got != nil {
				list = sortedByID(got)
			}
			if !slices.Equal(list, tc.want) {
				t.Fatalf("got %v, want %v", list, tc.want)
			}
		})
	}
}

func TestStatusProblem(t *testing.T) {
	one := uint64(1)
	rows := []nodeStatus{{Node: &one, State: "Leader"}, {Node: &one, State: "Follower"}}
	if p := statusProblem(rows); p != "" {
		t.Fatalf("healthy: %q", p)
	}
	rows = append(rows, nodeStatus{State: "unreachable"}, nodeStatus{Node: &one, State: "Leader"})
	if p := statusProblem(rows); p != "1 of 4 node(s) unreachable; 2 nodes report Leader" {
		t.Fatalf("got %q", p)
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := groupThousands(n); got != want {
			t.Errorf("groupThousands(%d) = %q", n, got)
		}
	}
	for v, want := range map[float64]string{0.0126: "13µs", 1.5: "1.50ms", 250: "250ms"} {
		if got := fmtMs(v); got != want {
			t.Errorf("fmtMs(%v) = %q, want %q", v, got, want)
		}
	}
	if got := string(formatJSON([]byte("not json"), true)); got != "not json" {
		t.Errorf("non-JSON must pass through: %q", got)
	}
	tb := objectTable([]map[string]any{{"z": 1.0, "topic": "a"}, {"topic": "b", "extra": map[string]any{"k": true}}}, []string{"topic", "missing"})
	var buf bytes.Buffer
	if err := tb.write(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "topic extra z" ||
		strings.Join(strings.Fields(lines[1]), " ") != "a - 1" ||
		strings.Join(strings.Fields(lines[2]), " ") != `b {"k":true} -` {
		t.Fatalf("table:\n%s", buf.String())
	}
	if colorJSON(palette{on: false}, []byte(`{"a": 1}`)) != `{"a": 1}` {
		t.Fatal("colour with palette off")
	}
	if got := colorJSON(palette{on: true}, []byte("{\n  \"a\": 1\n}")); !strings.Contains(got, "\x1b[36m\"a\"\x1b[0m: 1") {
		t.Fatalf("coloured key: %q", got)
	}
}

func TestStatusTableColoursKeepAlignment(t *testing.T) {
	one, two := uint64(1), uint64(2)
	rows := []nodeStatus{
		{Node: &one, Addr: "a:1", State: "Leader", Term: &one, Leader: &one},
		{Node: &two, Addr: "b:2", State: "Follower", Term: &one, Leader: &one},
		{Addr: "c:3", State: "unreachable", Error: "refused"},
	}
	var plain, coloured bytes.Buffer
	if err := writeStatusTable(&plain, palette{}, rows); err != nil {
		t.Fatal(err)
	}
	if err := writeStatusTable(&coloured, palette{on: true}, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(coloured.String(), "\x1b[32mLeader\x1b[0m") || !strings.Contains(coloured.String(), "\x1b[31munreachable\x1b[0m") {
		t.Fatalf("no colours: %q", coloured.String())
	}
	stripped := strings.NewReplacer("\x1b[32m", "", "\x1b[31m", "", "\x1b[0m", "").Replace(coloured.String())
	if stripped != plain.String() {
		t.Fatalf("colours changed the layout:\n%s\nvs\n%s", stripped, plain.String())
	}
}
