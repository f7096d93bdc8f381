package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientStaysLight: the client (and so walrus-cli) decodes the node's
// documents through node/status, which must not drag in Raft or the
// node's internals.
func TestClientStaysLight(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "hashicorp/") || strings.HasSuffix(dep, "/node/metadata") || strings.HasSuffix(dep, "/node/consensus") {
			t.Errorf("node/client depends on %s", dep)
		}
	}
}
