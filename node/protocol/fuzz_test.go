package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/walrus-go/walrus/engine"
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

// FuzzValidateRequest: a Request that ValidateRequest accepts survives
// encoding and parsing unchanged in every field the command uses.
func FuzzValidateRequest(f *testing.F) {
	f.Add("PUT", "logs", []byte("hello world"), "")
	f.Add("GET", "logs", []byte(nil), "")
	f.Add("TOPICS", "", []byte(nil), "a")
	f.Add("put", "a b", []byte("x"), "")
	f.Add("X", "", []byte(" y "), "z")
	f.Fuzz(func(t *testing.T, cmd, topic string, payload []byte, arg string) {
		req := Request{Command: cmd, Topic: topic, Payload: payload}
		if arg != "" {
			req.Args = []string{arg}
		}
		isExt := Usage(cmd) == ""
		if isExt {
			req.Topic, req.Payload = "", nil // extensions carry Args
		}
		if ValidateRequest(req) != nil {
			return
		}
		got, err := ParseRequest(req.Encode())
		if err != nil {
			t.Fatalf("valid %#v encodes to %q, rejected: %v", req, req.Encode(), err)
		}
		if got.Command != req.Command {
			t.Fatalf("command %q -> %q", req.Command, got.Command)
		}
		switch {
		case isExt:
			if !reflect.DeepEqual(got.Args, req.Args) {
				t.Fatalf("args %q -> %q", req.Args, got.Args)
			}
		case cmd == CmdPut:
			if got.Topic != req.Topic || !bytes.Equal(got.Payload, req.Payload) {
				t.Fatalf("PUT %q %q -> %q %q", req.Topic, req.Payload, got.Topic, got.Payload)
			}
		case cmd != CmdMetrics:
			if got.Topic != req.Topic {
				t.Fatalf("topic %q -> %q", req.Topic, got.Topic)
			}
		}
	})
}

// FuzzPlainTopic: the fast path never accepts a name the engine rejects.
func FuzzPlainTopic(f *testing.F) {
	for _, s := range []string{"logs", ".", "..", "a/b", "a\\b", "a b", "é", "~x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if plainTopic(name) && engine.ValidateTopic(name) != nil {
			t.Fatalf("plainTopic accepts %q, engine rejects it: %v", name, engine.ValidateTopic(name))
		}
	})
}
