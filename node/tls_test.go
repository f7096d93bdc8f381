package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/mux"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/rpc"
	"github.com/walrus-go/walrus/node/tlsconf"
	"github.com/walrus-go/walrus/node/wire"
)

// syncBuffer is a log sink safe for a node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Contains(s.b.Bytes(), []byte(sub))
}

// tlsCluster is a 3-node cluster with mutual TLS between peers (cluster
// CA) and TLS on the client ports (a separate CA for client-facing
// certificates), all certificates made here and written to files.
type tlsCluster struct {
	dir              string
	clusterCA, srvCA *testcerts.CA
	nodes            []*nodetest.Node
	clientTLS        *tls.Config
}

func startTLSCluster(t *testing.T, tweak func(*node.Config)) *tlsCluster {
	t.Helper()
	tc := &tlsCluster{dir: t.TempDir(), clusterCA: testcerts.NewCA(t, "walrus cluster CA"), srvCA: testcerts.NewCA(t, "walrus client CA")}
	tc.clientTLS = &tls.Config{RootCAs: tc.srvCA.Pool(), MinVersion: tls.VersionTLS12}
	tc.nodes = nodetest.StartClusterWith(t, 3, func(c *node.Config) {
		name := "node" + strconv.FormatUint(c.NodeID, 10)
		peer := testcerts.WriteFiles(t, tc.dir, name+"-cluster", tc.clusterCA, tc.clusterCA.Localhost(t, name))
		srv := testcerts.WriteFiles(t, tc.dir, name+"-client", tc.srvCA, tc.srvCA.Localhost(t, name))
		c.ClusterTLS = tlsconf.Files{CertFile: peer.Cert, KeyFile: peer.Key, CAFile: peer.CA}
		c.TLS = tlsconf.Files{CertFile: srv.Cert, KeyFile: srv.Key}
		c.TLSReloadInterval = tlsconf.MinReloadInterval
		if tweak != nil {
			tweak(c)
		}
	}, client.Options{TLS: tc.clientTLS})
	return tc
}

// TestTLSCluster: smoke, rollover and failover over TLS, and the
// refusals: a plaintext client, a peer with a certificate from another
// CA (neither an RPC nor a join gets through), then certificate rotation.
//
// Clients also authenticate (users and ACLs on: nodetest.Dial logs in as
// the admin), so this is the secured 3-node cluster of issue 16.
func TestTLSCluster(t *testing.T) {
	secure := nodetest.Secure(t, map[string]string{"app": "app-pw"}, nil)
	tc := startTLSCluster(t, func(c *node.Config) {
		c.MaxSegmentEntries = 20
		c.FailureTimeout = time.Second
		secure(c)
	})
	nodes := tc.nodes
	ctx := t.Context()
	leader := nodetest.RaftLeader(t, nodes)

	t.Run("smoke", func(t *testing.T) {
		w, r := nodetest.Dial(t, nodes[1]), nodetest.Dial(t, nodes[2])
		for i := range 10 {
			if err := w.Put(ctx, "smoke", fmt.Appendf(nil, "s%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			p, ok, err := r.Get(ctx, "smoke")
			if err != nil || !ok || string(p) != fmt.Sprintf("s%d", i) {
				t.Fatalf("get %d = %q %v %v", i, p, ok, err)
			}
		}
	})

	t.Run("rollover", func(t *testing.T) {
		c := nodetest.Dial(t, nodes[0])
		for i := range 50 {
			if err := c.Put(ctx, "roll", fmt.Appendf(nil, "r%d", i)); err != nil {
				t.Fatal(err)
			}
			if i == 25 {
				nodetest.Eventually(t, 20*time.Second, "a rollover", func() bool {
					return len(nodetest.State(t, c, "roll").SealedSegments) >= 1
				})
			}
		}
		for i := range 50 {
			p, ok, err := c.Get(ctx, "roll")
			if err != nil || !ok || string(p) != fmt.Sprintf("r%d", i) {
				t.Fatalf("get %d = %q %v %v", i, p, ok, err)
			}
		}
	})

	t.Run("plaintext client refused", func(t *testing.T) {
		raw, err := net.DialTimeout("tcp", nodes[0].ClientAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pc := client.NewConn(raw, nodes[0].ClientAddr(), client.Options{Timeout: 5 * time.Second})
		defer pc.Close()
		if err := pc.Put(ctx, "plaintext", []byte("x")); err == nil {
			t.Fatal("a plaintext PUT on the TLS port was answered OK")
		}
		c := nodetest.Dial(t, nodes[0])
		// A TOPICS round trip through the Raft leader orders this check
		// after anything the plaintext connection could have caused.
		if _, err := c.DoLine(ctx, "TOPICS"); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if _, ok := n.Metadata().Topic("plaintext"); ok {
				t.Fatalf("node %d knows topic plaintext: the plaintext PUT was acted on", n.ID())
			}
		}
	})

	t.Run("peer from another CA", func(t *testing.T) {
		other := testcerts.NewCA(t, "rogue CA")
		rogue := testcerts.WriteFiles(t, tc.dir, "rogue", other, other.Localhost(t, "rogue"))
		src, err := tlsconf.NewSource("cluster", tlsconf.Files{CertFile: rogue.Cert, KeyFile: rogue.Key, CAFile: rogue.CA}, true, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Its CA file trusts the cluster's certificates, so only the
		// cluster's check of the rogue certificate stands in the way.
		trusting := testcerts.WriteFiles(t, tc.dir, "rogue-trusting", tc.clusterCA, other.Localhost(t, "rogue"))
		var seen atomic.Int64
		for _, n := range nodes {
			n.Faults().Intercept(func(_ byte, payload []byte) error {
				if bytes.Contains(payload, []byte("evil")) {
					seen.Add(1)
				}
				return nil
			})
		}
		defer func() {
			for _, n := range nodes {
				n.Faults().Intercept(nil)
			}
		}()
		pool := rpc.NewPool(func(ctx context.Context, addr string) (net.Conn, error) {
			cfg, err := src.PeerClientConfig(addr)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = tc.clusterCA.Pool()
			return mux.DialTLS(ctx, addr, mux.TagRPC, cfg)
		}, nodetest.Logger(t))
		defer pool.Close()
		for _, n := range nodes {
			wc := wire.Client{Caller: pool, Addr: n.RaftAddr(), Timeout: 5 * time.Second}
			if err := wc.Append(ctx, "evil", [][]byte{[]byte("evil")}); err == nil {
				t.Fatalf("node %d accepted an append RPC from a peer of another CA", n.ID())
			}
		}
		if seen.Load() != 0 {
			t.Fatalf("%d RPCs from the rogue peer reached a handler", seen.Load())
		}

		// A whole node with that certificate cannot join.
		var logs syncBuffer
		cfg := nodetest.Config(4, t.TempDir())
		cfg.Join = []string{leader.RaftAddr()}
		cfg.ClusterTLS = tlsconf.Files{CertFile: trusting.Cert, KeyFile: trusting.Key, CAFile: trusting.CA}
		n4, err := node.New(cfg, memstore.New(), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n4.Run(rctx) }()
		defer func() {
			n4.Abort()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("rogue node Run: %v", err)
			}
		}()
		nodetest.Eventually(t, 20*time.Second, "the rogue node's join refused", func() bool {
			return logs.Contains("join attempt failed") && logs.Contains("tls:")
		})
		c := nodetest.Dial(t, leader)
		if m := nodetest.Metrics(t, c); len(m.MembershipConfig.Nodes) != 3 {
			t.Fatalf("membership after the rogue join: %+v", m.MembershipConfig)
		}
		if len(leader.Metadata().Nodes()) != 3 {
			t.Fatalf("metadata lists %d nodes, want 3", len(leader.Metadata().Nodes()))
		}
	})

	t.Run("certificate rotation", func(t *testing.T) {
		n := nodes[0]
		next := tc.srvCA.Issue(t, testcerts.LeafOptions{CommonName: "node1-rotated", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
		testcerts.WriteFiles(t, tc.dir, "node1-client", tc.srvCA, next)
		served := func() string {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.ClientAddr(), tc.clientTLS.Clone())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		nodetest.Eventually(t, 10*time.Second, "the rotated certificate served", func() bool { return served() == "node1-rotated" })
		if got := testutil.ToFloat64(n.Metrics().TLSCertExpiry.WithLabelValues("client")); got != float64(next.Cert.NotAfter.Unix()) {
			t.Fatalf("expiry gauge = %v, want %d", got, next.Cert.NotAfter.Unix())
		}
		// A broken file keeps the rotated certificate, and ReloadTLS says so.
		testcerts.Write(t, filepath.Join(tc.dir, "node1-client.key"), []byte("garbage"))
		if err := n.ReloadTLS(); err == nil {
			t.Fatal("ReloadTLS with a broken key: nil error")
		}
		if got := served(); got != "node1-rotated" {
			t.Fatalf("after a failed reload the node serves %q", got)
		}
		if err := nodetest.Dial(t, n).Put(ctx, "smoke", []byte("after rotation")); err != nil {
			t.Fatal(err)
		}

		// The peer port rotates the same way: node 2 dialing node 1 sees
		// node 1's new cluster certificate, and the cluster keeps working.
		peer, err := tlsconf.NewSource("cluster", tlsconf.Files{
			CertFile: filepath.Join(tc.dir, "node2-cluster.crt"), KeyFile: filepath.Join(tc.dir, "node2-cluster.key"), CAFile: filepath.Join(tc.dir, "node2-cluster-ca.crt"),
		}, true, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		nextPeer := tc.clusterCA.Issue(t, testcerts.LeafOptions{CommonName: "node1-cluster-rotated", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		testcerts.WriteFiles(t, tc.dir, "node1-cluster", tc.clusterCA, nextPeer)
		peerServed := func() string {
			cfg, err := peer.PeerClientConfig(n.RaftAddr())
			if err != nil {
				t.Fatal(err)
			}
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			conn, err := mux.DialTLS(dctx, n.RaftAddr(), mux.TagRPC, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		nodetest.Eventually(t, 10*time.Second, "the rotated peer certificate served", func() bool { return peerServed() == "node1-cluster-rotated" })
		if err := nodetest.Dial(t, nodes[2]).Put(ctx, "smoke", []byte("after peer rotation")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("openssl s_client", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl not installed (.ci/run installs it)")
		}
		ca := filepath.Join(tc.dir, "node2-client-ca.crt")
		// The README's line: the seed's framed METRICS over TLS, after
		// an AUTH frame (users are on in this cluster).
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, openssl, "s_client", "-connect", nodes[1].ClientAddr(), "-CAfile", ca, "-verify_return_error", "-quiet")
		login := "AUTH " + nodetest.AdminUser + " " + nodetest.AdminPassword
		frames := append(binary.LittleEndian.AppendUint32(nil, uint32(len(login))), login...)
		frames = append(frames, "\x07\x00\x00\x00METRICS"...)
		cmd.Stdin = bytes.NewReader(frames)
		cmd.WaitDelay = time.Second
		out, _ := cmd.Output()
		if len(out) < 5 || !bytes.Contains(out, []byte(`"state"`)) {
			t.Fatalf("openssl s_client got %q, want a framed METRICS reply", out)
		}
	})

	t.Run("failover", func(t *testing.T) {
		leader := nodetest.RaftLeader(t, nodes)
		c := nodetest.Dial(t, leader)
		topic := ""
		var victim *nodetest.Node
		for i := 0; victim == nil; i++ {
			name := "tls-fo-" + strconv.Itoa(i)
			if err := c.Register(ctx, name); err != nil {
				t.Fatal(err)
			}
			if l := nodetest.State(t, c, name).LeaderNode; l != leader.ID() {
				topic, victim = name, nodes[l-1]
			}
		}
		for i := range 5 {
			if err := c.Put(ctx, topic, fmt.Appendf(nil, "f%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		victim.Crash(t)
		putRetry(t, c, topic, "after")
		want := []string{"f0", "f1", "f2", "f3", "f4", "after"}
		for i, w := range want {
			p, ok, err := c.Get(ctx, topic)
			if err != nil || !ok || string(p) != w {
				t.Fatalf("get %d = %q %v %v, want %q", i, p, ok, err, w)
			}
		}
	})
}
