package testcluster

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

func TestSetKey(t *testing.T) {
	m := map[string]any{"storage": map[string]any{"backend": "mmap"}}
	SetKey(m, "storage.plugin.path", "/x")
	SetKey(m, "node_id", 3)
	want := map[string]any{"node_id": 3, "storage": map[string]any{"backend": "mmap", "plugin": map[string]any{"path": "/x"}}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v", m)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ps := FreePorts(t, 12)
	seen := map[int]bool{}
	for _, p := range ps {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or repeated port %d in %v", p, ps)
		}
		seen[p] = true
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(5*time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("err=%v n=%d", err, n)
	}
	errLast := errors.New("never")
	if err := Poll(120*time.Millisecond, func() error { return errLast }); !errors.Is(err, errLast) {
		t.Fatalf("Poll = %v", err)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("a\nb\nc\nd\n"), 0o644)
	if got := Tail(p, 2); got != "c\nd" {
		t.Fatalf("Tail = %q", got)
	}
}

// Conn against an echo server that answers every frame with "OK <body>"
// and closes on the body "bye".
func TestConnFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		for {
			b, err := protocol.ReadFrame(r, 0)
			if err != nil || string(b) == "bye" {
				return
			}
			protocol.WriteFrame(nc, append([]byte("OK "), b...))
		}
	}()
	c := MustDial(t, ln.Addr().String())
	if got, err := c.Do("PUT t a b"); err != nil || got != "OK PUT t a b" {
		t.Fatalf("Do = %q, %v", got, err)
	}
	// Pipelined sends come back in order.
	for _, s := range []string{"1", "2", "3"} {
		if err := c.Send(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"1", "2", "3"} {
		if got, err := c.Recv(); err != nil || got != "OK "+s {
			t.Fatalf("Recv = %q, %v", got, err)
		}
	}
	if err := c.WriteRaw(FrameWithLength(7, []byte("METRICS"))); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Recv(); got != "OK METRICS" {
		t.Fatalf("raw frame reply %q", got)
	}
	c.Send("bye")
	c.SetTimeout(5 * time.Second)
	if err := c.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !strings.HasPrefix(string(Frame("METRICS")), "\x07\x00\x00\x00") {
		t.Fatal("Frame prefix is not little-endian length")
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
}

func TestRejoinConfig(t *testing.T) {
	extra := func(id uint64) map[string]any {
		return map[string]any{"raft.host": bindIP(id), "raft.port": 7000 + int(id), "raft.advertise_host": advIP(id)}
	}
	tests := []struct {
		name      string
		nodeExtra func(uint64) map[string]any
		want      []string
	}{
		{name: "plain", want: []string{"127.0.0.1:6002", "127.0.0.1:6003"}},
		{name: "behind proxies", nodeExtra: extra, want: []string{"127.0.1.2:7002", "127.0.1.3:7003"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{t: t, opts: Options{NodeExtra: tc.nodeExtra}}
			for i := range 3 {
				c.Nodes = append(c.Nodes, &Node{ID: uint64(i + 1), RaftAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(6001+i))})
			}
			if got := c.config(c.Nodes[0])["join"]; !reflect.DeepEqual(got, []string{}) {
				t.Fatalf("node 1 before a wipe: join = %v, want none (it bootstraps)", got)
			}
			c.Nodes[0].rejoin = true
			if got := c.config(c.Nodes[0])["join"]; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("node 1 after a wipe: join = %v, want %v", got, tc.want)
			}
		})
	}
}
