package protocol

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// ReplyKind says how a reply is spelled on the wire.
type ReplyKind uint8

const (
	// ReplyOK is the bare "OK".
	ReplyOK ReplyKind = iota + 1
	// ReplyPayload is "OK " followed by Body (a GET hit).
	ReplyPayload
	// ReplyEmpty is "EMPTY" (a GET with nothing to read).
	ReplyEmpty
	// ReplyRaw is Body as-is, no prefix (STATE and METRICS JSON).
	ReplyRaw
	// ReplyErr is "ERR " followed by Body (the message).
	ReplyErr
)

func (k ReplyKind) String() string {
	switch k {
	case ReplyOK:
		return "OK"
	case ReplyPayload:
		return "Payload"
	case ReplyEmpty:
		return "Empty"
	case ReplyRaw:
		return "Raw"
	case ReplyErr:
		return "Err"
	}
	return fmt.Sprintf("ReplyKind(%d)", uint8(k))
}

// Reply is one reply. The zero Reply is invalid; use the constructors.
type Reply struct {
	Kind ReplyKind
	Body []byte
}

var (
	okWord    = []byte("OK")
	okPrefix  = []byte("OK ")
	emptyWord = []byte("EMPTY")
	errWord   = []byte("ERR")
	errPrefix = []byte("ERR ")
)

// OK is the bare "OK" reply.
func OK() Reply { return Reply{Kind: ReplyOK} }

// Payload is "OK <b>". b is not copied.
func Payload(b []byte) Reply { return Reply{Kind: ReplyPayload, Body: b} }

// Empty is the "EMPTY" reply.
func Empty() Reply { return Reply{Kind: ReplyEmpty} }

// Raw sends b as the whole reply (JSON). b is not copied. It must not start
// with "OK", "EMPTY" or "ERR" followed by a space or the end, or the client
// would read it as that reply; JSON never does.
func Raw(b []byte) Reply { return Reply{Kind: ReplyRaw, Body: b} }

// Errf is "ERR <message>". Invalid UTF-8 in the formatted message is
// replaced so the reply itself is always valid protocol text.
func Errf(format string, args ...any) Reply {
	msg := fmt.Sprintf(format, args...)
	return Reply{Kind: ReplyErr, Body: []byte(sanitize(msg))}
}

// ErrReply turns err into "ERR <err.Error()>". A *RequestError yields
// exactly its Message.
func ErrReply(err error) Reply { return Reply{Kind: ReplyErr, Body: []byte(sanitize(err.Error()))} }

// maxEchoBytes bounds how much of a client's unknown command word is echoed
// back, so a 1 MiB garbage word does not come back as a 1 MiB error.
const maxEchoBytes = 64

// UnknownCommand is "ERR unknown command <cmd>", with cmd cut to 64 bytes
// on a rune boundary.
func UnknownCommand(cmd string) Reply {
	if len(cmd) > maxEchoBytes {
		cut := maxEchoBytes
		for cut > 0 && !utf8.RuneStart(cmd[cut]) {
			cut--
		}
		cmd = cmd[:cut] + "..."
	}
	return Errf("unknown command %s", cmd)
}

func sanitize(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
}

// AppendReply appends the frame body of r (no length prefix) to dst.
func AppendReply(dst []byte, r Reply) []byte {
	switch r.Kind {
	case ReplyOK:
		return append(dst, okWord...)
	case ReplyPayload:
		dst = append(dst, okPrefix...)
		return append(dst, r.Body...)
	case ReplyEmpty:
		return append(dst, emptyWord...)
	case ReplyRaw:
		return append(dst, r.Body...)
	case ReplyErr:
		dst = append(dst, errPrefix...)
		return append(dst, r.Body...)
	}
	// A zero or unknown Kind is a programming error in the handler; the
	// client still gets a well-formed reply rather than a broken stream.
	return append(dst, "ERR internal error: invalid reply"...)
}

// AppendReplyFrame appends r as a complete frame to dst. A Raw reply with
// an empty body would be an illegal zero-length frame, so it is sent as
// "ERR internal error: empty reply" instead.
func AppendReplyFrame(dst []byte, r Reply) []byte {
	if r.Kind == ReplyRaw && len(r.Body) == 0 {
		r = Errf("internal error: empty reply")
	}
	dst, at := beginFrame(dst)
	dst = AppendReply(dst, r)
	return endFrame(dst, at)
}

// Encode returns the frame body of r.
func (r Reply) Encode() []byte { return AppendReply(nil, r) }

// String is the frame body as text, for logs and the CLI.
func (r Reply) String() string { return string(r.Encode()) }

// IsErr reports whether r is an ERR reply.
func (r Reply) IsErr() bool { return r.Kind == ReplyErr }

// ParseReply classifies a reply frame body (client side). "OK" → ReplyOK;
// "OK <b>" → ReplyPayload; "EMPTY" → ReplyEmpty; "ERR" or "ERR <m>" →
// ReplyErr; anything else (JSON) → ReplyRaw. Body aliases frame.
func ParseReply(frame []byte) Reply {
	switch {
	case bytes.Equal(frame, okWord):
		return OK()
	case bytes.HasPrefix(frame, okPrefix):
		return Payload(frame[len(okPrefix):])
	case bytes.Equal(frame, emptyWord):
		return Empty()
	case bytes.Equal(frame, errWord):
		return Reply{Kind: ReplyErr, Body: []byte{}}
	case bytes.HasPrefix(frame, errPrefix):
		return Reply{Kind: ReplyErr, Body: frame[len(errPrefix):]}
	}
	return Raw(frame)
}
