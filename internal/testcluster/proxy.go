package testcluster

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Partition routes the node-to-node traffic (Raft and internal RPC, which
// share one port) of a cluster through fault-injecting TCP proxies on
// loopback, so a test can cut chosen nodes off from each other while
// clients still reach every node.
//
// Node i binds its Raft port on 127.0.2.i and advertises 127.0.1.i; the
// proxy for node i listens on 127.0.1.i:port and forwards to 127.0.2.i.
// A node bound to a loopback address other than 127.0.0.1 dials its peers
// from that address (node/mux), so each proxy knows which node a
// connection comes from. Use Options() as the cluster's NodeExtra.
type Partition struct {
	t     testing.TB
	ports map[uint64]int
	lns   []net.Listener

	mu      sync.Mutex
	blocked map[[2]uint64]bool
	conns   map[*proxyConn]struct{}
	wg      sync.WaitGroup
}

type proxyConn struct {
	from, to uint64
	a, b     net.Conn
}

func bindIP(id uint64) string { return "127.0.2." + strconv.FormatUint(id, 10) }
func advIP(id uint64) string  { return "127.0.1." + strconv.FormatUint(id, 10) }

// NewPartition starts one proxy per node id (1..nodes). Everything is
// closed at test cleanup.
func NewPartition(t testing.TB, nodes int) *Partition {
	t.Helper()
	p := &Partition{t: t, ports: map[uint64]int{}, blocked: map[[2]uint64]bool{}, conns: map[*proxyConn]struct{}{}}
	ports := FreePorts(t, nodes)
	// Fill the port map before any proxy goroutine runs: serve reads it.
	for i := range nodes {
		p.ports[uint64(i+1)] = ports[i]
	}
	for i := range nodes {
		id := uint64(i + 1)
		ln, err := net.Listen("tcp", net.JoinHostPort(advIP(id), strconv.Itoa(ports[i])))
		if err != nil {
			p.Close()
			t.Fatalf("testcluster: proxy for node %d: %v", id, err)
		}
		p.lns = append(p.lns, ln)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(ln, id)
		}()
	}
	t.Cleanup(p.Close)
	return p
}

// RaftAddr is the address peers use for node id (its proxy).
func (p *Partition) RaftAddr(id uint64) string {
	return net.JoinHostPort(advIP(id), strconv.Itoa(p.ports[id]))
}

// NodeExtra returns the config keys that put node id behind its proxy.
func (p *Partition) NodeExtra(id uint64) map[string]any {
	m := map[string]any{
		"raft.host":           bindIP(id),
		"raft.port":           p.ports[id],
		"raft.advertise_host": advIP(id),
	}
	if id != 1 {
		m["join"] = []string{p.RaftAddr(1)}
	}
	return m
}

// Isolate cuts node id off from every other node (both directions) and
// closes the connections already open between them.
func (p *Partition) Isolate(id uint64) {
	p.mu.Lock()
	for other := range p.ports {
		if other != id {
			p.blocked[[2]uint64{id, other}] = true
			p.blocked[[2]uint64{other, id}] = true
		}
	}
	var cut []*proxyConn
	for c := range p.conns {
		if p.blocked[[2]uint64{c.from, c.to}] {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		_ = c.a.Close()
		_ = c.b.Close()
	}
}

// Heal removes every cut.
func (p *Partition) Heal() {
	p.mu.Lock()
	clear(p.blocked)
	p.mu.Unlock()
}

// Close stops the proxies and closes every connection.
func (p *Partition) Close() {
	for _, ln := range p.lns {
		_ = ln.Close()
	}
	p.mu.Lock()
	for c := range p.conns {
		_ = c.a.Close()
		_ = c.b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// sourceNode maps a connection's source address to a node id (0 when it
// is not a node's bind address).
func sourceNode(addr net.Addr) uint64 {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return 0
	}
	ip := ta.IP.To4()
	if ip == nil || ip[0] != 127 || ip[1] != 0 || ip[2] != 2 {
		return 0
	}
	return uint64(ip[3])
}

func (p *Partition) serve(ln net.Listener, to uint64) {
	for {
		a, err := ln.Accept()
		if err != nil {
			return
		}
		from := sourceNode(a.RemoteAddr())
		p.mu.Lock()
		if p.blocked[[2]uint64{from, to}] {
			p.mu.Unlock()
			_ = a.Close()
			continue
		}
		p.mu.Unlock()
		b, err := net.Dial("tcp", net.JoinHostPort(bindIP(to), strconv.Itoa(p.ports[to])))
		if err != nil {
			_ = a.Close()
			continue
		}
		c := &proxyConn{from: from, to: to, a: a, b: b}
		p.mu.Lock()
		if p.blocked[[2]uint64{from, to}] {
			p.mu.Unlock()
			_ = a.Close()
			_ = b.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}
		go pipe(a, b)
		go pipe(b, a)
	}
}

// String describes the cuts, for logs.
func (p *Partition) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("partition %v", p.blocked)
}
