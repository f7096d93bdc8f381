package tests

import (
	"testing"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// All three nodes started at the same moment (as scripts/cluster-up.sh
// does): the joiners retry until node 1 has bootstrapped and form one
// cluster.
func TestSimultaneousStart(t *testing.T) {
	skipShort(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, NoWait: true})
	c.WaitReady()
	conn := c.Conn(3)
	mustOK(t, conn, "PUT together hello")
	if r := do(t, c.Conn(2), "GET together"); r != "OK hello" {
		t.Fatalf("GET: %q", r)
	}
}
