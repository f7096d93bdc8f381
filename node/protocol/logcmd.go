package protocol

import (
	"strconv"
	"time"

	"github.com/walrus-go/walrus/engine"
)

// The log commands: offsets, replay and consumer groups. They arrive as
// extension requests (Request.Args) and are parsed by ParseLog.
const (
	CmdOffsets   = "OFFSETS"
	CmdSeek      = "SEEK"
	CmdFetch     = "FETCH"
	CmdCommit    = "COMMIT"
	CmdCommitted = "COMMITTED"
	CmdRead      = "READ"
	CmdAck       = "ACK"
	CmdGroups    = "GROUPS"
)

// Bounds and defaults of the log commands.
const (
	DefaultFetchEntries = 100
	MaxFetchEntries     = 10000
	DefaultAckWait      = 30 * time.Second
	MaxAckWait          = 12 * time.Hour
	// MaxAckOffsets bounds the offsets of one ACK.
	MaxAckOffsets = 10000
)

var logUsage = map[string]string{
	CmdOffsets:   "OFFSETS <topic>",
	CmdSeek:      "SEEK <topic> <unix_ms>",
	CmdFetch:     "FETCH <topic> <offset> [max_entries]",
	CmdCommit:    "COMMIT <group> <topic> <offset>",
	CmdCommitted: "COMMITTED <group> <topic>",
	CmdRead:      "READ <group> <topic> [max_entries] [ack_wait_ms]",
	CmdAck:       "ACK <group> <topic> <offset> [<offset>...]",
	CmdGroups:    "GROUPS [<topic>]",
}

// IsLogCommand reports whether cmd (upper-case) is a log command.
func IsLogCommand(cmd string) bool { _, ok := logUsage[cmd]; return ok }

// LogRequest is a parsed log command. Fields a command does not take are
// zero; Topic is empty for a GROUPS of every topic.
type LogRequest struct {
	Command string
	Group   string
	Topic   string
	// Offset: FETCH's start, COMMIT's offset. Offsets: ACK's offsets.
	Offset  uint64
	Offsets []uint64
	// Time is SEEK's Unix ms.
	Time int64
	// Max: FETCH and READ entries (defaulted).
	Max     int
	AckWait time.Duration
}

// ParseLog parses a log command from its words. Errors are *RequestError
// whose message ends with the command's usage.
func ParseLog(req Request) (LogRequest, error) {
	cmd, a := req.Command, req.Args
	out := LogRequest{Command: cmd}
	bad := func(what string) (LogRequest, error) {
		return LogRequest{}, &RequestError{Kind: ErrUsage, Message: what + " (usage: " + logUsage[cmd] + ")"}
	}
	arity := func(min, max int) bool { return len(a) >= min && len(a) <= max }
	topicAt := func(i int) error {
		if err := engine.ValidateTopic(a[i]); err != nil {
			return &RequestError{Kind: ErrInvalidTopic, Message: err.Error() + " (usage: " + logUsage[cmd] + ")", Cause: err}
		}
		out.Topic = a[i]
		return nil
	}
	groupAt := func(i int) error {
		if err := engine.ValidateTopic(a[i]); err != nil {
			return &RequestError{Kind: ErrUsage, Message: "invalid group name: " + err.Error() + " (usage: " + logUsage[cmd] + ")", Cause: err}
		}
		out.Group = a[i]
		return nil
	}
	var err error
	switch cmd {
	case CmdOffsets:
		if !arity(1, 1) {
			return bad(cmd + " takes exactly one topic")
		}
		err = topicAt(0)
	case CmdSeek:
		if !arity(2, 2) {
			return bad(cmd + " takes a topic and a time")
		}
		if err = topicAt(0); err == nil {
			t, perr := strconv.ParseInt(a[1], 10, 64)
			if perr != nil || t < 0 {
				return bad("time " + strconv.Quote(a[1]) + " is not a Unix time in milliseconds")
			}
			out.Time = t
		}
	case CmdFetch:
		if !arity(2, 3) {
			return bad(cmd + " takes a topic, an offset and optionally a maximum")
		}
		if err = topicAt(0); err != nil {
			break
		}
		if out.Offset, err = offsetArg(a[1]); err != nil {
			return bad(err.Error())
		}
		out.Max = DefaultFetchEntries
		if len(a) == 3 {
			if out.Max, err = countArg(a[2], MaxFetchEntries); err != nil {
				return bad(err.Error())
			}
		}
	case CmdCommit:
		if !arity(3, 3) {
			return bad(cmd + " takes a group, a topic and an offset")
		}
		if err = groupAt(0); err == nil {
			if err = topicAt(1); err == nil {
				if out.Offset, err = offsetArg(a[2]); err != nil {
					return bad(err.Error())
				}
			}
		}
	case CmdCommitted:
		if !arity(2, 2) {
			return bad(cmd + " takes a group and a topic")
		}
		if err = groupAt(0); err == nil {
			err = topicAt(1)
		}
	case CmdRead:
		if !arity(2, 4) {
			return bad(cmd + " takes a group, a topic and optionally a maximum and an ack wait")
		}
		if err = groupAt(0); err != nil {
			break
		}
		if err = topicAt(1); err != nil {
			break
		}
		out.Max, out.AckWait = DefaultFetchEntries, DefaultAckWait
		if len(a) >= 3 {
			if out.Max, err = countArg(a[2], MaxFetchEntries); err != nil {
				return bad(err.Error())
			}
		}
		if len(a) == 4 {
			ms, perr := strconv.ParseUint(a[3], 10, 64)
			if perr != nil || ms == 0 || ms > uint64(MaxAckWait/time.Millisecond) {
				return bad("ack_wait_ms " + strconv.Quote(a[3]) + " must be 1.." + strconv.FormatInt(int64(MaxAckWait/time.Millisecond), 10))
			}
			out.AckWait = time.Duration(ms) * time.Millisecond
		}
	case CmdAck:
		if len(a) < 3 {
			return bad(cmd + " takes a group, a topic and at least one offset")
		}
		if len(a)-2 > MaxAckOffsets {
			return bad(cmd + " takes at most " + strconv.Itoa(MaxAckOffsets) + " offsets")
		}
		if err = groupAt(0); err != nil {
			break
		}
		if err = topicAt(1); err != nil {
			break
		}
		out.Offsets = make([]uint64, 0, len(a)-2)
		for _, w := range a[2:] {
			o, oerr := offsetArg(w)
			if oerr != nil {
				return bad(oerr.Error())
			}
			out.Offsets = append(out.Offsets, o)
		}
	case CmdGroups:
		if !arity(0, 1) {
			return bad(cmd + " takes at most one topic")
		}
		if len(a) == 1 {
			err = topicAt(0)
		}
	default:
		return LogRequest{}, &RequestError{Kind: ErrUsage, Message: "not a log command: " + cmd}
	}
	if err != nil {
		return LogRequest{}, err
	}
	return out, nil
}

type argError string

func (e argError) Error() string { return string(e) }

func offsetArg(w string) (uint64, error) {
	o, err := strconv.ParseUint(w, 10, 64)
	if err != nil || o > 1<<62 {
		return 0, argError("offset " + strconv.Quote(w) + " is not a non-negative integer")
	}
	return o, nil
}

func countArg(w string, limit int) (int, error) {
	n, err := strconv.Atoi(w)
	if err != nil || n < 1 || n > limit {
		return 0, argError("max_entries " + strconv.Quote(w) + " must be 1.." + strconv.Itoa(limit))
	}
	return n, nil
}
