package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walrus-go/walrus/node/protocol"
)

// byteConn is a net.Conn that reads a fixed input and records what is
// written, so one connection can be served synchronously in a fuzz loop.
type byteConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *byteConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

type echoHandler struct{}

func (echoHandler) Handle(_ context.Context, reqs []protocol.Request) []protocol.Reply {
	out := make([]protocol.Reply, len(reqs))
	for i, r := range reqs {
		switch r.Command {
		case protocol.CmdPut:
			out[i] = protocol.Payload(r.Payload)
		case protocol.CmdMetrics:
			out[i] = protocol.Raw([]byte(`{"id":1}`))
		case "PANIC":
			panic("fuzz")
		default:
			out[i] = protocol.Empty()
		}
	}
	return out
}

// FuzzConn serves arbitrary client bytes on one connection: the server
// must not panic or hang, must answer every complete frame with exactly one
// well-formed reply, in order, and must stop after a bad length prefix.
func FuzzConn(f *testing.F) {
	f.Add([]byte("\x07\x00\x00\x00METRICS"))
	f.Add([]byte("\x06\x00\x00\x00METRICS"))
	f.Add(append(protocol.AppendFrame(protocol.AppendFrame(nil, []byte("PUT t a")), []byte("PANIC")), 0, 0, 0, 0))
	f.Add([]byte("\x00\x00\x00\x00\x05\x00\x00\x00GET t\xff\xff\xff\x7fxyz"))
	f.Add(protocol.AppendFrame(nil, []byte("PUT t \xff")))
	const maxFrame = 64
	f.Fuzz(func(t *testing.T, in []byte) {
		// Count the frames a correct server must answer.
		want := 0
		r := bufio.NewReader(bytes.NewReader(in))
		for {
			_, err := protocol.ReadFrame(r, maxFrame)
			if err == nil {
				want++
				continue
			}
			var fe *protocol.FrameLengthError
			if errors.As(err, &fe) {
				want++ // answered, then the connection is closed
			}
			break
		}
		s := New(Config{MaxFrameBytes: maxFrame, MaxBatch: 4}, echoHandler{}, nil)
		defer s.Close()
		conn := &byteConn{in: bytes.NewReader(in)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			newConnState(s, conn).serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection wedged")
		}
		out := bufio.NewReader(&conn.out)
		got := 0
		for {
			f, err := protocol.ReadFrame(out, 0)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reply stream broken after %d replies: %v", got, err)
			}
			if !utf8.Valid(f) {
				t.Fatalf("reply %d is not UTF-8: %q", got, f)
			}
			got++
		}
		if got != want {
			t.Fatalf("%d replies for %d frames", got, want)
		}
	})
}
