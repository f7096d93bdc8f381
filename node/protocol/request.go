package protocol

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/walrus-go/walrus/engine"
)

// The five commands of the original protocol. Command words are matched
// case-insensitively and always reported upper-case in Request.Command.
const (
	CmdRegister = "REGISTER"
	CmdPut      = "PUT"
	CmdGet      = "GET"
	CmdState    = "STATE"
	CmdMetrics  = "METRICS"
)

// Sentinel kinds of request errors; the concrete error is a *RequestError
// whose Error() is exactly the text that follows "ERR " in the reply.
var (
	ErrInvalidUTF8  = errors.New("invalid utf-8")
	ErrEmptyCommand = errors.New("empty command")
	// ErrUsage: missing or extra arguments for one of the five commands.
	ErrUsage = errors.New("wrong arguments")
	// ErrInvalidTopic: the topic failed engine.ValidateTopic; errors.Is
	// also matches engine.ErrInvalidName.
	ErrInvalidTopic = errors.New("invalid topic name")
)

// RequestError is returned by ParseRequest. Message is meant for the client
// verbatim (the server replies "ERR " + Message).
type RequestError struct {
	Kind    error // one of the Err* sentinels above
	Message string
	Cause   error // the underlying error, e.g. from engine.ValidateTopic; may be nil
}

func (e *RequestError) Error() string { return e.Message }

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *RequestError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// Request is one parsed client request.
//
// For REGISTER, GET and STATE, Topic is set; for PUT, Topic and Payload; for
// METRICS nothing. Any other command word is an extension, parsed
// generically: Args holds the white-space separated words after the command
// and Payload the raw text after "<COMMAND> " (nil when there is none), so an
// extension can choose either view. The node decides which extensions exist
// and answers the rest with UnknownCommand.
//
// Payload aliases the frame passed to ParseRequest; callers that keep it
// longer than the frame must not reuse the frame's memory.
type Request struct {
	Command string // upper-case
	Topic   string
	Payload []byte
	Args    []string
}

// Usage returns the syntax of a known command ("" for extensions), as
// quoted in error messages.
func Usage(command string) string {
	switch command {
	case CmdRegister:
		return "REGISTER <topic>"
	case CmdPut:
		return "PUT <topic> <payload>"
	case CmdGet:
		return "GET <topic>"
	case CmdState:
		return "STATE <topic>"
	case CmdMetrics:
		return "METRICS"
	}
	return ""
}

// isSpace is the white space trimmed around words. PUT payloads are never
// trimmed.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// ParseRequest parses one frame body. The grammar, byte for byte:
//
//   - the whole frame must be valid UTF-8 (else ErrInvalidUTF8);
//   - leading white space (space, tab, CR, LF) is skipped; the command word
//     runs up to the first white-space byte, which is consumed as the
//     separator, and is case-insensitive (Unicode upper-casing);
//   - PUT: the topic runs from after "PUT " to the next space; the payload is
//     every byte after that one space, kept exactly (spaces, tabs, newlines),
//     and must not be empty;
//   - REGISTER, GET, STATE: exactly one topic word; METRICS: no words
//     (trailing white space is ignored);
//   - topics must pass engine.ValidateTopic.
//
// Errors are *RequestError (see its Kind).
func ParseRequest(frame []byte) (Request, error) {
	if !utf8.Valid(frame) {
		return Request{}, &RequestError{Kind: ErrInvalidUTF8, Message: "invalid utf-8"}
	}
	i := 0
	for i < len(frame) && isSpace(frame[i]) {
		i++
	}
	line := frame[i:]
	var word, rest []byte
	hasRest := false
	word = line
	for j, c := range line {
		if isSpace(c) {
			word, rest, hasRest = line[:j], line[j+1:], true
			break
		}
	}
	if len(word) == 0 {
		return Request{}, &RequestError{Kind: ErrEmptyCommand, Message: "empty command"}
	}
	cmd := commandName(word)
	switch cmd {
	case CmdPut:
		return parsePut(rest, hasRest)
	case CmdRegister, CmdGet, CmdState:
		args := fields(rest)
		if len(args) != 1 {
			return Request{}, usageError(cmd, len(args) == 0)
		}
		if err := validateTopic(args[0]); err != nil {
			return Request{}, err
		}
		return Request{Command: cmd, Topic: args[0]}, nil
	case CmdMetrics:
		if len(fields(rest)) != 0 {
			return Request{}, usageError(cmd, false)
		}
		return Request{Command: cmd}, nil
	default:
		req := Request{Command: cmd, Args: fields(rest)}
		if hasRest && len(rest) > 0 {
			req.Payload = rest
		}
		return req, nil
	}
}

func parsePut(rest []byte, hasRest bool) (Request, error) {
	if !hasRest {
		return Request{}, usageError(CmdPut, true)
	}
	sp := indexByte(rest, ' ')
	if sp < 0 {
		topic := trimRightSpace(rest)
		if len(topic) == 0 {
			return Request{}, usageError(CmdPut, true)
		}
		if err := validateTopic(string(topic)); err != nil {
			return Request{}, err
		}
		return Request{}, &RequestError{Kind: ErrUsage, Message: "PUT requires a payload (usage: PUT <topic> <payload>)"}
	}
	topic := string(rest[:sp])
	if topic == "" {
		return Request{}, usageError(CmdPut, true)
	}
	if err := validateTopic(topic); err != nil {
		return Request{}, err
	}
	payload := rest[sp+1:]
	if len(payload) == 0 {
		return Request{}, &RequestError{Kind: ErrUsage, Message: "PUT requires a payload (usage: PUT <topic> <payload>)"}
	}
	return Request{Command: CmdPut, Topic: topic, Payload: payload}, nil
}

func usageError(cmd string, missing bool) error {
	msg := cmd + " requires a topic (usage: " + Usage(cmd) + ")"
	switch {
	case cmd == CmdMetrics:
		msg = "METRICS takes no arguments (usage: METRICS)"
	case !missing:
		msg = cmd + " takes exactly one topic (usage: " + Usage(cmd) + ")"
	}
	return &RequestError{Kind: ErrUsage, Message: msg}
}

func validateTopic(topic string) error {
	if plainTopic(topic) {
		return nil
	}
	err := engine.ValidateTopic(topic)
	if err == nil {
		return nil
	}
	// engine's text ends in ": invalid topic name" (its %w); say it once.
	detail := strings.TrimSuffix(err.Error(), ": "+engine.ErrInvalidName.Error())
	return &RequestError{Kind: ErrInvalidTopic, Message: "invalid topic name: " + detail, Cause: err}
}

// plainTopic is the common case of engine.ValidateTopic decided in one
// pass over the bytes: printable ASCII without '/' or '\\', not "." or "..".
// Anything else (including every invalid name) goes to the full check, so
// the two cannot disagree on what is rejected.
func plainTopic(t string) bool {
	if len(t) == 0 || len(t) > engine.MaxTopicBytes || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// commandName upper-cases a command word without allocating for the known
// commands.
func commandName(word []byte) string {
	for _, c := range [...]string{CmdPut, CmdGet, CmdRegister, CmdState, CmdMetrics} {
		if asciiEqualFold(word, c) {
			return c
		}
	}
	return strings.ToUpper(string(word))
}

// asciiEqualFold compares b with the upper-case ASCII string s ignoring
// ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// fields splits on the same white space isSpace trims; nil when empty.
func fields(b []byte) []string {
	var out []string
	for {
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		if len(b) == 0 {
			return out
		}
		j := 0
		for j < len(b) && !isSpace(b[j]) {
			j++
		}
		out = append(out, string(b[:j]))
		b = b[j:]
	}
}

// AppendRequest appends the frame body of req (no length prefix) to dst.
// It does not validate req; a server rejects what ParseRequest would.
func AppendRequest(dst []byte, req Request) []byte {
	dst = append(dst, req.Command...)
	switch req.Command {
	case CmdPut:
		dst = append(dst, ' ')
		dst = append(dst, req.Topic...)
		dst = append(dst, ' ')
		dst = append(dst, req.Payload...)
	case CmdRegister, CmdGet, CmdState:
		dst = append(dst, ' ')
		dst = append(dst, req.Topic...)
	case CmdMetrics:
	default:
		if req.Payload != nil {
			dst = append(dst, ' ')
			dst = append(dst, req.Payload...)
		} else {
			for _, a := range req.Args {
				dst = append(dst, ' ')
				dst = append(dst, a...)
			}
		}
	}
	return dst
}

// AppendRequestFrame appends req as a complete frame (length prefix and
// body) to dst.
func AppendRequestFrame(dst []byte, req Request) []byte {
	dst, at := beginFrame(dst)
	dst = AppendRequest(dst, req)
	return endFrame(dst, at)
}

// Encode returns the frame body of req.
func (req Request) Encode() []byte { return AppendRequest(nil, req) }

// ValidateRequest checks a Request built in code (not parsed) before it is
// sent: Command upper-case and one word; for the five commands, a valid
// topic (and for PUT a non-empty payload); all text valid UTF-8; extension
// Args single non-empty words. A Request that passes encodes to a frame
// that ParseRequest turns back into the same command, topic and payload
// (or, for extensions, the same arguments), so a mistake such as a space
// inside a topic cannot silently become a different request. Errors
// are *RequestError with the messages the server would send.
func ValidateRequest(req Request) error {
	switch req.Command {
	case CmdPut, CmdRegister, CmdGet, CmdState, CmdMetrics:
		// Upper-case single words by definition; the common path stays cheap.
	case "":
		return &RequestError{Kind: ErrEmptyCommand, Message: "empty command"}
	default:
		if !utf8.ValidString(req.Command) {
			return &RequestError{Kind: ErrInvalidUTF8, Message: "invalid utf-8"}
		}
		if strings.ToUpper(req.Command) != req.Command || strings.ContainsAny(req.Command, " \t\r\n") {
			return &RequestError{Kind: ErrUsage, Message: fmt.Sprintf("command %q must be one upper-case word", req.Command)}
		}
	}
	if !utf8.Valid(req.Payload) {
		return &RequestError{Kind: ErrInvalidUTF8, Message: "invalid utf-8"}
	}
	switch req.Command {
	case CmdPut:
		if req.Topic == "" {
			return usageError(CmdPut, true)
		}
		if err := validateTopic(req.Topic); err != nil {
			return err
		}
		if len(req.Payload) == 0 {
			return &RequestError{Kind: ErrUsage, Message: "PUT requires a payload (usage: PUT <topic> <payload>)"}
		}
	case CmdRegister, CmdGet, CmdState:
		if req.Topic == "" {
			return usageError(req.Command, true)
		}
		return validateTopic(req.Topic)
	case CmdMetrics:
	default:
		for _, a := range req.Args {
			if a == "" || strings.ContainsAny(a, " \t\r\n") || !utf8.ValidString(a) {
				return &RequestError{Kind: ErrUsage, Message: fmt.Sprintf("%s: argument %q must be one non-empty word", req.Command, a)}
			}
		}
	}
	return nil
}
