package hclogslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestFormatValuesRendered(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), Options{})
	servers := []string{"a", "b"}
	in := []any{"index", 3, "servers", hclog.Fmt("%+v", servers)}
	l.With("implied", hclog.Fmt("%d-%d", 1, 2)).Info("config", in...)
	l.Info("empty", "k", hclog.Format{})
	out := buf.String()
	for _, want := range []string{`msg=config implied=1-2 index=3 servers="[a b]"`, `msg=empty k=""`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, ok := in[3].(hclog.Format); !ok {
		t.Fatal("Log modified its caller's arguments")
	}
	if got := renderFormat(hclog.Format{1, 2}); got != "1 2" {
		t.Fatalf("format without a string verb rendered %q", got)
	}
}
