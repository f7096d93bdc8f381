package hclogslog

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
)

// renderFormat turns a deferred hclog.Fmt value into its text: slog would
// otherwise log the raw slice (Raft logged servers="[%+v [...]]").
func renderFormat(f hclog.Format) string {
	if len(f) == 0 {
		return ""
	}
	format, ok := f[0].(string)
	if !ok {
		return fmt.Sprint([]any(f)...)
	}
	return fmt.Sprintf(format, f[1:]...)
}
