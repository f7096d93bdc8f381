package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseRequest: ParseRequest never panics; whatever it accepts encodes
// back to a frame that parses to the same request; whatever it rejects gets
// an ERR reply that is valid protocol text.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"REGISTER logs", "PUT logs hello world", "put t  spaced \n", "GET logs", "STATE logs",
		"METRICS", "METRIC", "TOPICS", "topics a b", "PUT", "PUT a", "PUT a ", "GET a/b",
		"\xff\xfe", " ", "GET ..", "pUt é 🦭",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := ParseRequest(in)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			wire := ErrReply(err).Encode()
			if !utf8.Valid(wire) || !bytes.HasPrefix(wire, []byte("ERR ")) {
				t.Fatalf("bad ERR reply %q", wire)
			}
			return
		}
		if req.Command == "" {
			t.Fatal("accepted request with empty command")
		}
		again, err := ParseRequest(req.Encode())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", req.Encode(), err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: %#v != %#v", again, req)
		}
	})
}

// FuzzReadFrame: ReadFrame never panics, never returns more than max
// bytes, and every frame it returns re-encodes to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x07\x00\x00\x00METRICS"), 64)
	f.Add([]byte("\x06\x00\x00\x00METRICS"), 64)
	f.Add([]byte("\x00\x00\x00\x00"), 64)
	f.Add([]byte("\xff\xff\xff\xff"), 64)
	f.Add([]byte("\x02\x00\x00\x00OK\x05\x00\x00\x00EMPTY"), 3)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<16 {
			max = 1 << 16
		}
		r := bufio.NewReader(bytes.NewReader(in))
		var out []byte
		for {
			b, err := ReadFrame(r, max)
			if err != nil {
				if errors.Is(err, io.EOF) && !bytes.Equal(out, in) {
					t.Fatalf("clean EOF but re-encoded %q != input %q", out, in)
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameLength) {
					t.Fatalf("unexpected error type %T %v", err, err)
				}
				return
			}
			if len(b) == 0 || len(b) > max {
				t.Fatalf("frame of %d bytes with max %d", len(b), max)
			}
			out = AppendFrame(out, b)
			// Replies built from anything the client might send stay parseable.
			rep := ParseReply(b)
			if got := ParseReply(rep.Encode()); got.Kind != rep.Kind || !bytes.Equal(got.Body, rep.Body) {
				t.Fatalf("reply round trip %q: %v %q != %v %q", b, got.Kind, got.Body, rep.Kind, rep.Body)
			}
		}
	})
}
