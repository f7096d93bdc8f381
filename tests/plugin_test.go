package tests

import (
	"path/filepath"
	"testing"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// A 3-node cluster whose nodes keep their segments in an out-of-process
// plugin (plugins/mmapplugin): data written through it survives a node's
// restart, and the daemon stops the plugin with itself.
func TestPluginBackendCluster(t *testing.T) {
	skipShort(t)
	plugin := testcluster.BuildPackage(t, "./plugins/mmapplugin")
	dirs := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		dirs[id] = filepath.Join(t.TempDir(), "plugin-data")
	}
	c := testcluster.Start(t, testcluster.Options{
		Nodes:             3,
		Backend:           "plugin",
		PluginPath:        plugin,
		MaxSegmentEntries: rollEntries,
		MonitorInterval:   rollMonitor,
		NodeExtra: func(id uint64) map[string]any {
			return map[string]any{"storage.plugin.args": []string{"-dir", dirs[id]}}
		},
	})
	written := writeRolled(t, c, "plug", 3) // three segments, one on each node
	st, err := c.State(1, "plug")
	if err != nil {
		t.Fatal(err)
	}
	checkRoundRobin(t, st, c.IDs())

	// Restart one segment holder that is not the Raft leader; its sealed
	// segment must come back from the plugin's files.
	victim := c.Follower().ID
	c.Stop(victim)
	c.Restart(victim)
	c.WaitReady()
	got := drain(t, c.Conn(victim), "plug", len(written))
	sameList(t, "GET through a plugin-backed cluster after a restart", got, written)
}
