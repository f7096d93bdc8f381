package clicmd

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Every command the shell's help lists is completed by Tab, and the log
// commands are among them.
func TestShellCompletesEveryCommand(t *testing.T) {
	var listed []string
	for line := range strings.Lines(shellHelp) {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		word := strings.Fields(line)[0]
		if strings.IndexFunc(word, unicode.IsLower) < 0 {
			listed = append(listed, word)
		}
	}
	for _, w := range []string{"OFFSETS", "SEEK", "FETCH", "COMMIT", "COMMITTED", "READ", "ACK", "GROUPS"} {
		if !slices.Contains(listed, w) {
			t.Errorf("help does not list %s", w)
		}
	}
	for _, w := range listed {
		if !slices.Contains(shellWords[:], w) {
			t.Errorf("%s is in the help but not completed", w)
		}
	}
	got, n := shellCompleter().Do([]rune("COMMI"), 5)
	var words []string
	for _, g := range got {
		words = append(words, "COMMI"+strings.TrimSpace(string(g)))
	}
	slices.Sort(words)
	if n != 5 || !slices.Equal(words, []string{"COMMIT", "COMMITTED"}) {
		t.Fatalf("COMMI<Tab> = %q (%d)", words, n)
	}
}
