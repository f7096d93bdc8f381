package hclogfmt

import (
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestArgsRendersFormat(t *testing.T) {
	servers := []string{"a", "b"}
	in := []any{"index", 3, "servers", hclog.Fmt("%+v", servers)}
	out := Args(in)
	if got := out[3]; got != "[a b]" {
		t.Fatalf("rendered %#v, want %q", got, "[a b]")
	}
	if _, ok := in[3].(hclog.Format); !ok {
		t.Fatal("Args modified its input")
	}
	plain := []any{"k", "v"}
	if got := Args(plain); &got[0] != &plain[0] {
		t.Fatal("Args copied args with nothing to render")
	}
	if got := Args([]any{"k", hclog.Format{}})[1]; got != "" {
		t.Fatalf("empty format rendered %#v", got)
	}
}
