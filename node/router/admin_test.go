package router

import (
	"context"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/metadata"
	"github.com/walrus-go/walrus/node/protocol"
)

func (l *fakeLeader) Propose(_ context.Context, cmd metadata.Command) (metadata.Result, error) {
	return l.fsm.ApplyCommand(cmd), nil
}

func TestCreateAlterDelete(t *testing.T) {
	h := newHarness(t, true)
	ctx := t.Context()
	if rep := h.r.Create(ctx, []string{"r", "rf=1", "max_age_ms=60000", "max_entries=10"}); rep.Kind != protocol.ReplyOK {
		t.Fatalf("create: %s", rep.String())
	}
	if tp, _ := h.fsm.Topic("r"); tp.Retention.Effective(metadata.Limits{MaxBytes: 7}) != (metadata.Limits{MaxAgeMs: 60000, MaxBytes: 7, MaxEntries: 10}) {
		t.Fatalf("retention %+v", tp.Retention)
	}
	// CREATE of an existing topic keeps its settings.
	if rep := h.r.Create(ctx, []string{"r", "max_entries=99"}); rep.Kind != protocol.ReplyOK {
		t.Fatal(rep.String())
	}
	if rep := h.r.Alter(ctx, []string{"r", "max_entries=0", "MAX_BYTES=4096"}); rep.Kind != protocol.ReplyOK {
		t.Fatalf("alter: %s", rep.String())
	}
	if tp, _ := h.fsm.Topic("r"); tp.Retention.Effective(metadata.Limits{MaxEntries: 7}) != (metadata.Limits{MaxAgeMs: 60000, MaxBytes: 4096}) {
		t.Fatalf("after alter %+v", tp.Retention)
	}
	for args, want := range map[string]string{
		"r":                 "ALTER takes a topic and at least one setting",
		"r max_bytes=-1":    `max_bytes="-1": want a whole number >= 0`,
		"r speed=1":         `unknown setting "speed=1"`,
		"nope max_bytes=1":  "unknown topic nope",
		"r max_age_ms=soon": "want a whole number",
	} {
		if rep := h.r.Alter(ctx, strings.Fields(args)); rep.Kind != protocol.ReplyErr || !strings.Contains(rep.String(), want) {
			t.Errorf("ALTER %s = %q, want %q", args, rep.String(), want)
		}
	}
	if rep := h.r.Create(ctx, []string{"s", "max_bytes=x"}); rep.Kind != protocol.ReplyErr || !strings.Contains(rep.String(), "usage: CREATE") {
		t.Errorf("CREATE with a bad limit: %s", rep.String())
	}
	if rep := h.r.Delete(ctx, []string{"r"}); rep.Kind != protocol.ReplyOK {
		t.Fatalf("delete: %s", rep.String())
	}
	if _, ok := h.fsm.Topic("r"); ok {
		t.Fatal("topic survived DELETE")
	}
	for _, args := range [][]string{{"r"}, {}, {"a", "b"}} {
		if rep := h.r.Delete(ctx, args); rep.Kind != protocol.ReplyErr {
			t.Errorf("DELETE %v = %s", args, rep.String())
		}
	}
}
