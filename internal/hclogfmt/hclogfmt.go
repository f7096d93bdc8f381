// Package hclogfmt renders hclog's deferred-format values for slog. Both
// hclog→slog adapters (Raft's in node/consensus, go-plugin's in
// plugins/internal/hclogadapter) pass their arguments through it, so a
// value such as hclog.Fmt("%+v", servers) is logged as the formatted text
// instead of the raw format slice ("[%+v [...]]").
package hclogfmt

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
)

// Args returns args with every hclog.Format value replaced by its
// fmt.Sprintf rendering. It returns args itself (no copy) when there is
// nothing to render, which is the common case.
func Args(args []any) []any {
	var out []any
	for i, a := range args {
		f, ok := a.(hclog.Format)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = render(f)
	}
	if out == nil {
		return args
	}
	return out
}

func render(f hclog.Format) string {
	if len(f) == 0 {
		return ""
	}
	format, ok := f[0].(string)
	if !ok {
		return fmt.Sprint([]any(f)...)
	}
	return fmt.Sprintf(format, f[1:]...)
}
