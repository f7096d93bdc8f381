package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/engine"
)

func frame(s string) []byte { return AppendFrame(nil, []byte(s)) }

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		max       int
		want      []string
		wantErr   error
		resync    bool
		remaining int // bytes left unread after the error
	}{
		{name: "one", in: frame("METRICS"), want: []string{"METRICS"}, wantErr: io.EOF},
		{name: "two back to back", in: append(frame("GET a"), frame("GET b")...), want: []string{"GET a", "GET b"}, wantErr: io.EOF},
		{name: "empty stream", in: nil, wantErr: io.EOF},
		{name: "short header", in: []byte{1, 0}, wantErr: io.ErrUnexpectedEOF},
		{name: "short body", in: []byte{5, 0, 0, 0, 'a'}, wantErr: io.ErrUnexpectedEOF},
		{name: "zero length", in: []byte{0, 0, 0, 0, 'x'}, wantErr: ErrFrameLength, resync: true, remaining: 1},
		{name: "oversized", in: []byte{9, 0, 0, 0, 'x'}, max: 8, wantErr: ErrFrameLength, remaining: 1},
		{name: "huge", in: []byte{0xff, 0xff, 0xff, 0xff}, wantErr: ErrFrameLength},
		{name: "exactly max", in: frame("12345678"), max: 8, want: []string{"12345678"}, wantErr: io.EOF},
		// The seed's health check: length 6 with 7 bytes of text.
		{name: "seed health check length 6", in: []byte("\x06\x00\x00\x00METRICS"), want: []string{"METRIC"}, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(tt.in))
			var got []string
			var err error
			for {
				var b []byte
				b, err = ReadFrame(r, tt.max)
				if err != nil {
					break
				}
				got = append(got, string(b))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("frames = %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if fe, ok := errors.AsType[*FrameLengthError](err); ok {
				if fe.Resyncable() != tt.resync {
					t.Fatalf("Resyncable = %v, want %v", fe.Resyncable(), tt.resync)
				}
				if r.Buffered() != tt.remaining {
					t.Fatalf("remaining = %d, want %d", r.Buffered(), tt.remaining)
				}
			}
		})
	}
}

func TestFrameBuffered(t *testing.T) {
	in := append(frame("GET a"), 3, 0, 0) // one full frame, then a partial header
	r := bufio.NewReader(bytes.NewReader(in))
	if _, err := r.Peek(len(in)); err != nil {
		t.Fatal(err)
	}
	if !FrameBuffered(r) {
		t.Fatal("complete frame not reported as buffered")
	}
	if _, err := ReadFrame(r, 0); err != nil {
		t.Fatal(err)
	}
	if FrameBuffered(r) {
		t.Fatal("partial header reported as a buffered frame")
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("OK")); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "\x02\x00\x00\x00OK" {
		t.Fatalf("wrote %q", got)
	}
	if err := WriteFrame(&buf, nil); !errors.Is(err, ErrFrameLength) {
		t.Fatalf("empty frame: err = %v", err)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Request
		wantErr error
		wantMsg string
	}{
		{name: "register", in: "REGISTER logs", want: Request{Command: "REGISTER", Topic: "logs"}},
		{name: "lower case", in: "register logs", want: Request{Command: "REGISTER", Topic: "logs"}},
		{name: "mixed case put", in: "pUt logs hi", want: Request{Command: "PUT", Topic: "logs", Payload: []byte("hi")}},
		{name: "put keeps spaces", in: "PUT logs  hello  world \n", want: Request{Command: "PUT", Topic: "logs", Payload: []byte(" hello  world \n")}},
		{name: "put single space payload", in: "PUT logs  ", want: Request{Command: "PUT", Topic: "logs", Payload: []byte(" ")}},
		{name: "put unicode", in: "PUT t héllo 🦭", want: Request{Command: "PUT", Topic: "t", Payload: []byte("héllo 🦭")}},
		{name: "get trailing newline", in: "GET logs\r\n", want: Request{Command: "GET", Topic: "logs"}},
		{name: "state", in: "STATE logs", want: Request{Command: "STATE", Topic: "logs"}},
		{name: "metrics", in: "METRICS", want: Request{Command: "METRICS"}},
		{name: "metrics newline", in: "metrics\n", want: Request{Command: "METRICS"}},
		{name: "leading space", in: "  GET a", want: Request{Command: "GET", Topic: "a"}},
		{name: "extension no args", in: "topics", want: Request{Command: "TOPICS"}},
		{name: "extension args", in: "Topics a  b", want: Request{Command: "TOPICS", Args: []string{"a", "b"}, Payload: []byte("a  b")}},
		{name: "seed health check", in: "METRIC", want: Request{Command: "METRIC"}},
		{name: "bad utf8", in: "PUT a \xff", wantErr: ErrInvalidUTF8, wantMsg: "invalid utf-8"},
		{name: "empty", in: " \n", wantErr: ErrEmptyCommand, wantMsg: "empty command"},
		{name: "register no topic", in: "REGISTER", wantErr: ErrUsage, wantMsg: "REGISTER requires a topic (usage: REGISTER <topic>)"},
		{name: "get no topic", in: "GET ", wantErr: ErrUsage, wantMsg: "GET requires a topic (usage: GET <topic>)"},
		{name: "get two topics", in: "GET a b", wantErr: ErrUsage, wantMsg: "GET takes exactly one topic (usage: GET <topic>)"},
		{name: "state no topic", in: "STATE", wantErr: ErrUsage, wantMsg: "STATE requires a topic (usage: STATE <topic>)"},
		{name: "metrics args", in: "METRICS x", wantErr: ErrUsage, wantMsg: "METRICS takes no arguments (usage: METRICS)"},
		{name: "put nothing", in: "PUT", wantErr: ErrUsage, wantMsg: "PUT requires a topic (usage: PUT <topic> <payload>)"},
		{name: "put no payload", in: "PUT logs", wantErr: ErrUsage, wantMsg: "PUT requires a payload (usage: PUT <topic> <payload>)"},
		{name: "put empty payload", in: "PUT logs ", wantErr: ErrUsage, wantMsg: "PUT requires a payload (usage: PUT <topic> <payload>)"},
		{name: "put empty topic", in: "PUT  x", wantErr: ErrUsage, wantMsg: "PUT requires a topic (usage: PUT <topic> <payload>)"},
		{name: "put bad topic", in: "PUT a/b x", wantErr: ErrInvalidTopic},
		{name: "register dotdot", in: "REGISTER ..", wantErr: ErrInvalidTopic},
		{name: "long topic", in: "GET " + strings.Repeat("x", engine.MaxTopicBytes+1), wantErr: ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantMsg != "" && err.Error() != tt.wantMsg {
					t.Fatalf("message = %q, want %q", err.Error(), tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			again, err := ParseRequest(got.Encode())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip: %#v, %v", again, err)
			}
		})
	}
}

func TestInvalidTopicMatchesEngine(t *testing.T) {
	_, err := ParseRequest([]byte("GET a/b"))
	if !errors.Is(err, engine.ErrInvalidName) {
		t.Fatalf("err %v does not match engine.ErrInvalidName", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid topic name: ") || strings.HasSuffix(msg, ": invalid topic name") {
		t.Fatalf("message %q", msg)
	}
}

func TestReplies(t *testing.T) {
	tests := []struct {
		name string
		r    Reply
		wire string
	}{
		{"ok", OK(), "OK"},
		{"payload", Payload([]byte("hello world")), "OK hello world"},
		{"empty", Empty(), "EMPTY"},
		{"raw", Raw([]byte(`{"id":1}`)), `{"id":1}`},
		{"err", Errf("unknown topic %s", "x"), "ERR unknown topic x"},
		{"unknown", UnknownCommand("METRIC"), "ERR unknown command METRIC"},
		{"request error", ErrReply(&RequestError{Kind: ErrInvalidUTF8, Message: "invalid utf-8"}), "ERR invalid utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.r.Encode()); got != tt.wire {
				t.Fatalf("Encode = %q, want %q", got, tt.wire)
			}
			back := ParseReply([]byte(tt.wire))
			if back.Kind != tt.r.Kind || !bytes.Equal(back.Body, tt.r.Body) {
				t.Fatalf("ParseReply = %v %q, want %v %q", back.Kind, back.Body, tt.r.Kind, tt.r.Body)
			}
			f := AppendReplyFrame(nil, tt.r)
			body, err := ReadFrame(bufio.NewReader(bytes.NewReader(f)), 0)
			if err != nil || string(body) != tt.wire {
				t.Fatalf("frame body %q, %v", body, err)
			}
		})
	}
}

func TestUnknownCommandTruncates(t *testing.T) {
	r := UnknownCommand(strings.Repeat("é", 100))
	if len(r.Body) > 100 || !strings.HasSuffix(string(r.Body), "...") {
		t.Fatalf("body %q", r.Body)
	}
	if !bytes.Equal(bytes.ToValidUTF8(r.Body, nil), r.Body) {
		t.Fatal("truncation split a rune")
	}
}

func TestInvalidReplyKindStillFramed(t *testing.T) {
	if got := string(Reply{}.Encode()); !strings.HasPrefix(got, "ERR internal error") {
		t.Fatalf("zero Reply encodes as %q", got)
	}
	f := AppendReplyFrame(nil, Raw(nil))
	body, err := ReadFrame(bufio.NewReader(bytes.NewReader(f)), 0)
	if err != nil || !strings.HasPrefix(string(body), "ERR internal error") {
		t.Fatalf("empty raw: %q %v", body, err)
	}
}
