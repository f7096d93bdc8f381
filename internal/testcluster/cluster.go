package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/walrus-go/walrus/node/status"
)

// Default timeouts. They are generous because CI runs on 2 shared cores.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultStopTimeout  = 20 * time.Second
	logTailLines        = 80
)

// Options configure a cluster. The zero value is a 3-node mmap cluster on
// the daemon's defaults.
type Options struct {
	// Nodes is the cluster size (default 3).
	Nodes int
	// MaxSegmentEntries and MonitorInterval set max_segment_entries and
	// monitor_check_ms when non-zero.
	MaxSegmentEntries uint64
	MonitorInterval   time.Duration
	// Backend sets storage.backend ("" = the daemon's default, mmap).
	Backend string
	// PluginPath and PluginArgs set storage.plugin.path/args.
	PluginPath string
	PluginArgs []string
	// HTTP gives every node a free HTTP port (otherwise http.port is 0).
	HTTP bool
	// LogLevel sets log.level (default "info"; "debug" explains more but
	// logs every client connection).
	LogLevel string
	// Extra sets more config keys in every node's YAML, by dotted key
	// ("storage.durability": "always").
	Extra map[string]any
	// NodeExtra, when set, returns keys for one node's YAML (after Extra).
	NodeExtra func(id uint64) map[string]any
	// Env is added to every process's environment (KEY=VALUE). Variables
	// starting with WALRUS_ from the test's own environment are dropped.
	Env []string
	// Args are extra command-line arguments for every process.
	Args []string
	// ReadyTimeout bounds Start and WaitReady (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// NoWait makes Start return once the processes are launched, without
	// waiting for a leader.
	NoWait bool
}

// Node is one walrus process of a cluster and its files. Addresses stay
// the same across restarts.
type Node struct {
	ID         uint64
	ClientAddr string
	RaftAddr   string
	HTTPAddr   string // "" when Options.HTTP is false
	Dir        string // the node's own temporary directory
	DataDir    string // data_dir in its config
	ConfigPath string
	LogPath    string // log.file
	StderrPath string // the process's stdout and stderr

	mu   sync.Mutex
	proc *process
	// paused is set between Pause and Resume (or a kill): the process is
	// stopped with SIGSTOP and must get SIGCONT before a SIGTERM can work.
	paused bool
	// rejoin is set by WipeData: the node has no Raft state any more and
	// must join through the other nodes, even node 1 (which otherwise
	// bootstraps and would make a second cluster).
	rejoin bool
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
	err  error         // Wait's result, valid after done
	// requested is set before the harness signals the process, so an exit
	// it caused is not mistaken for a crash.
	requested atomic.Bool
}

// Cluster is a set of walrus processes owned by one test.
type Cluster struct {
	t     testing.TB
	opts  Options
	bin   string
	Nodes []*Node // Nodes[i].ID == i+1
}

// Start launches a cluster and, unless NoWait, waits until it has exactly
// one Raft leader and every node is a voter. Node 1 bootstraps; the others
// join through node 1's Raft address. Everything is stopped in t.Cleanup,
// and on failure the tail of every log is printed.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	c := &Cluster{t: t, opts: opts, bin: WalrusBin(t)}
	ports := FreePorts(t, 3*opts.Nodes)
	root := t.TempDir()
	for i := range opts.Nodes {
		id := uint64(i + 1)
		dir := filepath.Join(root, "node"+strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n := &Node{
			ID:         id,
			ClientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i])),
			RaftAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+1])),
			Dir:        dir,
			DataDir:    filepath.Join(dir, "data"),
			ConfigPath: filepath.Join(dir, "walrus.yaml"),
			LogPath:    filepath.Join(dir, "walrus.log"),
			StderrPath: filepath.Join(dir, "stderr.log"),
		}
		if opts.HTTP {
			n.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+2]))
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.StopAll()
		c.checkRaces()
		if t.Failed() {
			c.DumpLogs()
		}
	})

	c.StartNode(1)
	if opts.NoWait {
		for _, n := range c.Nodes[1:] {
			c.StartNode(n.ID)
		}
		return c
	}
	// Joiners need a leader to join through, so wait for node 1 first.
	c.waitFor(opts.ReadyTimeout, "node 1 to lead", func() error {
		m, err := c.Metrics(1)
		if err != nil {
			return err
		}
		if m.State != "Leader" {
			return fmt.Errorf("node 1 is %s", m.State)
		}
		return nil
	})
	for _, n := range c.Nodes[1:] {
		c.StartNode(n.ID)
	}
	c.WaitReady()
	return c
}

func (c *Cluster) writeConfig(n *Node) error {
	b, err := yaml.Marshal(c.config(n))
	if err != nil {
		return fmt.Errorf("testcluster: config of node %d: %w", n.ID, err)
	}
	return os.WriteFile(n.ConfigPath, b, 0o644)
}

// config is node n's YAML document as a nested map.
func (c *Cluster) config(n *Node) map[string]any {
	cfg := map[string]any{
		"node_id":  n.ID,
		"data_dir": n.DataDir,
		"join":     []string{},
		"raft":     map[string]any{"host": "127.0.0.1", "port": port(n.RaftAddr)},
		"client":   map[string]any{"host": "127.0.0.1", "port": port(n.ClientAddr)},
		"http":     map[string]any{"host": "127.0.0.1", "port": port(n.HTTPAddr)},
		"kafka":    map[string]any{"host": "127.0.0.1", "port": 0},
		"log":      map[string]any{"level": c.opts.LogLevel, "file": n.LogPath},
	}
	if n.ID != 1 {
		cfg["join"] = []string{c.Nodes[0].RaftAddr}
	}
	if c.opts.MaxSegmentEntries != 0 {
		cfg["max_segment_entries"] = c.opts.MaxSegmentEntries
	}
	if c.opts.MonitorInterval != 0 {
		cfg["monitor_check_ms"] = c.opts.MonitorInterval.Milliseconds()
	}
	if c.opts.Backend != "" {
		SetKey(cfg, "storage.backend", c.opts.Backend)
	}
	if c.opts.PluginPath != "" {
		SetKey(cfg, "storage.plugin.path", c.opts.PluginPath)
	}
	if c.opts.PluginArgs != nil {
		SetKey(cfg, "storage.plugin.args", c.opts.PluginArgs)
	}
	for k, v := range c.opts.Extra {
		SetKey(cfg, k, v)
	}
	if c.opts.NodeExtra != nil {
		for k, v := range c.opts.NodeExtra(n.ID) {
			SetKey(cfg, k, v)
		}
	}
	n.mu.Lock()
	rejoin := n.rejoin
	n.mu.Unlock()
	if rejoin {
		var join []string
		for _, o := range c.Nodes {
			if o.ID != n.ID {
				join = append(join, c.advertisedRaftAddr(o))
			}
		}
		cfg["join"] = join
	}
	return cfg
}

// advertisedRaftAddr is the Raft address peers dial for node n: its
// raft.advertise_host (or raft.host) and raft.port after Extra and
// NodeExtra, so it is the proxy's address under a Partition.
func (c *Cluster) advertisedRaftAddr(n *Node) string {
	host, port := "127.0.0.1", port(n.RaftAddr)
	extra := map[string]any{}
	for k, v := range c.opts.Extra {
		extra[k] = v
	}
	if c.opts.NodeExtra != nil {
		for k, v := range c.opts.NodeExtra(n.ID) {
			extra[k] = v
		}
	}
	if h, ok := extra["raft.host"].(string); ok {
		host = h
	}
	if h, ok := extra["raft.advertise_host"].(string); ok {
		host = h
	}
	if p, ok := extra["raft.port"].(int); ok {
		port = p
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// SetKey sets a dotted key ("storage.plugin.path") in a nested YAML map.
func SetKey(m map[string]any, dotted string, v any) {
	parts := strings.Split(dotted, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

func port(addr string) int {
	if addr == "" {
		return 0
	}
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Node returns the node with id (1-based).
func (c *Cluster) Node(id uint64) *Node {
	c.t.Helper()
	if id < 1 || int(id) > len(c.Nodes) {
		c.t.Fatalf("testcluster: no node %d in a %d-node cluster", id, len(c.Nodes))
	}
	return c.Nodes[id-1]
}

// IDs lists every node id.
func (c *Cluster) IDs() []uint64 {
	ids := make([]uint64, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// StartNode launches node id's process (it must not be running) without
// waiting for it to serve.
func (c *Cluster) StartNode(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		select {
		case <-n.proc.done:
		default:
			c.t.Fatalf("testcluster: node %d is already running", id)
		}
	}
	args := append([]string{"--config", n.ConfigPath}, c.opts.Args...)
	p, err := startProcess(c.bin, n.Dir, n.StderrPath, c.opts.Env, args...)
	if err != nil {
		c.t.Fatalf("testcluster: start node %d: %v", id, err)
	}
	n.proc = p
	n.paused = false
}

// Running reports whether node id's process is alive.
func (c *Cluster) Running(id uint64) bool {
	n := c.Node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.proc.exited()
}

// RunningIDs lists the nodes whose processes are alive.
func (c *Cluster) RunningIDs() []uint64 {
	var ids []uint64
	for _, n := range c.Nodes {
		if c.Running(n.ID) {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// Kill sends SIGKILL to node id (and any plugin processes it started) and
// waits for it to die.
func (c *Cluster) Kill(id uint64) {
	c.t.Helper()
	n := c.Node(id)
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || p.exited() {
		return
	}
	p.signalGroup(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(DefaultStopTimeout):
		c.t.Fatalf("testcluster: node %d did not die after SIGKILL", id)
	}
	// SIGKILL ends a stopped process too; it is no longer paused.
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
}

// Stop sends SIGTERM to node id and fails the test unless it exits with
// status 0 within DefaultStopTimeout (after which it is killed).
func (c *Cluster) Stop(id uint64) {
	c.t.Helper()
	if err := c.stop(id); err != nil {
		c.t.Errorf("testcluster: %v", err)
	}
}

func (c *Cluster) stop(id uint64) error {
	n := c.Node(id)
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	p.requested.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("node %d: SIGTERM: %w", id, err)
	}
	// A stopped process keeps SIGTERM pending until SIGCONT: resume it
	// after the SIGTERM so it exits instead of serving for a moment.
	c.resume(n)
	select {
	case <-p.done:
	case <-time.After(DefaultStopTimeout):
		p.signalGroup(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("node %d did not exit within %v of SIGTERM; killed", id, DefaultStopTimeout)
	}
	// A plugin child left behind would be a leak of the daemon; reap it
	// either way so the test does not leave processes around.
	p.signalGroup(syscall.SIGKILL)
	if p.err != nil {
		return fmt.Errorf("node %d exited after SIGTERM with %v (want status 0)", id, p.err)
	}
	return nil
}

// Restart starts a stopped or killed node again with the same config and
// data, without waiting (use WaitReady or WaitLeader).
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	if c.Running(id) {
		c.t.Fatalf("testcluster: Restart(%d): node is running; Stop or Kill it first", id)
	}
	c.StartNode(id)
}

// StopAll stops every running node with SIGTERM, in parallel, and fails the
// test for any that does not exit 0.
func (c *Cluster) StopAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = c.stop(n.ID) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Errorf("testcluster: %v", err)
		}
	}
}

// RestartAll starts every stopped node and waits until the cluster is ready.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	for _, n := range c.Nodes {
		if !c.Running(n.ID) {
			c.StartNode(n.ID)
		}
	}
	c.WaitReady()
}

// WaitReady waits until every node runs, exactly one is the Raft leader,
// all agree on it and every node is a voter.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	c.WaitLeader(c.IDs()...)
}

// WaitLeader waits until the nodes ids (which must be running) agree on one
// Raft leader among them and the leader lists every cluster node as a
// voter, and returns the leader's id.
func (c *Cluster) WaitLeader(ids ...uint64) uint64 {
	c.t.Helper()
	var leader uint64
	c.waitFor(c.opts.ReadyTimeout, "one leader and all voters", func() error {
		l, err := c.checkLeader(ids)
		leader = l
		return err
	})
	return leader
}

func (c *Cluster) checkLeader(ids []uint64) (uint64, error) {
	var leaders []uint64
	var agreed *uint64
	var leaderMetrics status.Metrics
	for _, id := range ids {
		if !c.Running(id) {
			return 0, fmt.Errorf("node %d is not running", id)
		}
		m, err := c.Metrics(id)
		if err != nil {
			return 0, err
		}
		if m.State == "Leader" {
			leaders = append(leaders, id)
			leaderMetrics = m
		}
		if m.CurrentLeader == nil {
			return 0, fmt.Errorf("node %d has no current_leader", id)
		}
		if agreed != nil && *agreed != *m.CurrentLeader {
			return 0, fmt.Errorf("nodes disagree on the leader: %d vs %d", *agreed, *m.CurrentLeader)
		}
		agreed = m.CurrentLeader
	}
	if len(leaders) != 1 {
		return 0, fmt.Errorf("leaders among %v: %v", ids, leaders)
	}
	if *agreed != leaders[0] {
		return 0, fmt.Errorf("current_leader %d but node %d is Leader", *agreed, leaders[0])
	}
	voters := leaderMetrics.MembershipConfig.Voters
	for _, id := range c.IDs() {
		if !slices.Contains(voters, id) {
			return 0, fmt.Errorf("node %d is not a voter yet (voters %v, learners %v)", id, voters, leaderMetrics.MembershipConfig.Learners)
		}
	}
	return leaders[0], nil
}

// Leader waits for and returns the current Raft leader among the running
// nodes.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	return c.Node(c.WaitLeader(c.RunningIDs()...))
}

// Follower returns a running node other than the Raft leader.
func (c *Cluster) Follower() *Node {
	c.t.Helper()
	l := c.Leader().ID
	for _, id := range c.RunningIDs() {
		if id != l {
			return c.Node(id)
		}
	}
	c.t.Fatal("testcluster: no running follower")
	return nil
}

// Conn dials node id's client port; the connection closes at cleanup.
func (c *Cluster) Conn(id uint64) *Conn {
	c.t.Helper()
	return MustDial(c.t, c.Node(id).ClientAddr)
}

func (c *Cluster) waitFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	if err := Poll(timeout, func() error {
		for _, n := range c.Nodes {
			n.mu.Lock()
			p := n.proc
			n.mu.Unlock()
			// A process that was started and died on its own will never
			// become ready; fail fast with its exit status.
			if p != nil && p.exited() && !p.stopped() {
				return fmt.Errorf("%w: node %d exited: %v", errFatal, n.ID, p.err)
			}
		}
		return cond()
	}); err != nil {
		c.t.Fatalf("testcluster: waiting for %s: %v", what, err)
	}
}

var errFatal = errors.New("fatal")

// checkRaces fails the test when a daemon built with -race (EnvRace)
// reported a data race, including nodes that were killed.
func (c *Cluster) checkRaces() {
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(n.StderrPath); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			c.t.Errorf("testcluster: node %d reported a data race (see %s below)", n.ID, filepath.Base(n.StderrPath))
		}
	}
}

// DumpLogs writes the tail of every node's log and stderr to the test log.
func (c *Cluster) DumpLogs() {
	for _, n := range c.Nodes {
		for _, p := range []string{n.LogPath, n.StderrPath} {
			c.t.Logf("---- node %d %s (last %d lines) ----\n%s", n.ID, filepath.Base(p), logTailLines, Tail(p, logTailLines))
		}
	}
}

// Exited reports whether node id's process has exited and its Wait error
// (nil for status 0).
func (c *Cluster) Exited(id uint64) (bool, error) {
	n := c.Node(id)
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || !p.exited() {
		return false, nil
	}
	return true, p.err
}

// ctxTimeout is a context for one harness request.
func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), DefaultIOTimeout)
}
