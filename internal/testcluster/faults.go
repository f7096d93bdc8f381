package testcluster

import (
	"fmt"
	"os"
	"syscall"
)

// Faults beyond Kill and Stop, for nemesis tests: process pauses, lost
// disks, and non-fatal probes of who leads what while nodes misbehave.

// Pause stops node id's process group with SIGSTOP (a GC pause, a VM
// freeze): its sockets stay open and nothing answers. Stop, StopAll and
// cleanup resume a paused node, so a test that fails mid-pause still shuts
// down cleanly; Kill ends a pause too. Pausing a node that is not running
// is a no-op.
func (c *Cluster) Pause(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() || n.paused {
		return
	}
	if err := syscall.Kill(-n.proc.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		c.t.Fatalf("testcluster: SIGSTOP node %d: %v", id, err)
	}
	n.paused = true
}

// Resume sends SIGCONT to a node paused by Pause; otherwise it does
// nothing.
func (c *Cluster) Resume(id uint64) {
	c.t.Helper()
	c.resume(c.Node(id))
}

func (c *Cluster) resume(n *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.paused {
		return
	}
	n.paused = false
	if n.proc != nil && !n.proc.exited() {
		_ = syscall.Kill(-n.proc.cmd.Process.Pid, syscall.SIGCONT)
	}
}

// ResumeAll resumes every paused node.
func (c *Cluster) ResumeAll() {
	for _, n := range c.Nodes {
		c.resume(n)
	}
}

// Paused reports whether node id is paused.
func (c *Cluster) Paused(id uint64) bool {
	n := c.Node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// WipeData SIGKILLs node id, deletes its data directory (the disk is
// lost) and rewrites its config so that, started again with Restart, it
// joins through the other nodes' Raft addresses instead of bootstrapping,
// as an operator replacing a disk would. The node keeps its id and
// addresses. The node stays down until Restart.
func (c *Cluster) WipeData(id uint64) {
	c.t.Helper()
	c.Kill(id)
	n := c.Node(id)
	if err := os.RemoveAll(n.DataDir); err != nil {
		c.t.Fatalf("testcluster: wipe node %d: %v", id, err)
	}
	n.mu.Lock()
	n.rejoin = true
	n.mu.Unlock()
	if err := c.writeConfig(n); err != nil {
		c.t.Fatalf("testcluster: wipe node %d: %v", id, err)
	}
}

// Wipe is WipeData followed by Restart: the node comes back at once with
// an empty disk and rejoins. It does not wait (use WaitReady).
func (c *Cluster) Wipe(id uint64) {
	c.t.Helper()
	c.WipeData(id)
	c.Restart(id)
}

// Ready checks once, without failing the test, what WaitReady waits for:
// every node runs, exactly one is the Raft leader, all agree on it and
// every node is a voter. It returns the leader.
func (c *Cluster) Ready() (uint64, error) {
	return c.checkLeader(c.IDs())
}

// RaftLeader asks the running, unpaused nodes once for their Raft state
// and returns the node that says it is Leader and that most of the others
// name as current leader. Unlike Leader it never waits and never fails
// the test: a nemesis calls it while nodes are down or paused.
func (c *Cluster) RaftLeader() (uint64, error) {
	votes := map[uint64]int{}
	self := map[uint64]bool{}
	var errs []error
	for _, id := range c.RunningIDs() {
		if c.Paused(id) {
			continue
		}
		m, err := c.Metrics(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.State == "Leader" {
			self[id] = true
		}
		if l, ok := m.Leader(); ok {
			votes[l]++
		}
	}
	var best uint64
	for id, v := range votes {
		if self[id] && (best == 0 || v > votes[best]) {
			best = id
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("testcluster: no Raft leader among the running nodes (named %v, errors %v)", votes, errs)
	}
	return best, nil
}

// SegmentLeader asks node via (which must be running and not paused) for
// STATE topic and returns the leader of the topic's open segment.
func (c *Cluster) SegmentLeader(via uint64, topic string) (uint64, error) {
	st, err := c.State(via, topic)
	if err != nil {
		return 0, err
	}
	return st.LeaderNode, nil
}
