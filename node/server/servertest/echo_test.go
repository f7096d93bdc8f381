package servertest_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
	"github.com/walrus-go/walrus/node/server/servertest"
)

func TestEcho(t *testing.T) {
	e, err := servertest.NewEcho()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", e.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var in []byte
	for _, s := range []string{"REGISTER t", "PUT t hello", "PUT t again", "GET t", "STATE t", "METRICS", "NOPE"} {
		in = protocol.AppendFrame(in, []byte(s))
	}
	if _, err := conn.Write(in); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	want := []string{"OK", "OK", "OK", "OK " + strings.Repeat("e", servertest.EchoPayloadBytes), `{"topic":"t"`, `{"id":1`, "ERR unknown command NOPE"}
	for i, w := range want {
		f, err := protocol.ReadFrame(r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(f), w) {
			t.Fatalf("reply %d = %q, want prefix %q", i, f, w)
		}
	}
	if e.Puts() != 2 || e.Gets() != 1 {
		t.Fatalf("counted %d PUTs, %d GETs", e.Puts(), e.Gets())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
