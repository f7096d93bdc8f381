package protocol

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/walrus-go/walrus/node/record"
)

// FETCH and READ replies are the hot path of every consumer: they are
// written here by hand, without reflection, in exactly the shape of
// status.Fetch and status.Read (a test decodes them into those types).

// FetchJSON renders a FETCH reply.
func FetchJSON(dst []byte, topic string, next uint64, entries []record.Entry) []byte {
	dst = append(dst, `{"topic":`...)
	dst = AppendJSONString(dst, topic)
	dst = append(dst, `,"next":`...)
	dst = strconv.AppendUint(dst, next, 10)
	return appendEntries(dst, entries, false)
}

// ReadJSON renders a READ reply (entries carry their delivery counts).
func ReadJSON(dst []byte, group, topic string, entries []record.Entry) []byte {
	dst = append(dst, `{"group":`...)
	dst = AppendJSONString(dst, group)
	dst = append(dst, `,"topic":`...)
	dst = AppendJSONString(dst, topic)
	return appendEntries(dst, entries, true)
}

// EntriesJSONSize estimates the rendered size of entries (for one
// allocation).
func EntriesJSONSize(entries []record.Entry) int {
	n := 64
	for _, e := range entries {
		n += len(e.Payload)*4/3 + 100
	}
	return n
}

func appendEntries(dst []byte, entries []record.Entry, deliveries bool) []byte {
	dst = append(dst, `,"entries":[`...)
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"offset":`...)
		dst = strconv.AppendUint(dst, e.Offset, 10)
		dst = append(dst, `,"timestamp_ms":`...)
		dst = strconv.AppendInt(dst, e.Time, 10)
		if deliveries {
			dst = append(dst, `,"deliveries":`...)
			dst = strconv.AppendUint(dst, uint64(e.Deliveries), 10)
		}
		if utf8.Valid(e.Payload) {
			dst = append(dst, `,"payload":`...)
			dst = appendJSONBytes(dst, e.Payload)
		} else {
			// Binary (a Kafka producer's value): base64, never invalid UTF-8.
			dst = append(dst, `,"encoding":"base64","payload":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, e.Payload)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// AppendJSONString appends s as a JSON string.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONBytes(dst, []byte(s)) }

const hexDigits = "0123456789abcdef"

// appendJSONBytes appends b as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 with U+FFFD, as encoding/json does.
func appendJSONBytes(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}
