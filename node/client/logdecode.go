package client

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/walrus-go/walrus/node/status"
)

// FETCH and READ replies carry up to 10,000 entries and a consumer decodes
// one per request, so they get a hand-written decoder for exactly their
// shape (BenchmarkDecodePage: several times faster than encoding/json and
// one allocation per page instead of one per entry, since payloads without
// escapes are substrings of one copy of the body).
//
// The fast path only accepts what it understands completely: the documented
// keys, spelled exactly, each at most once, with values of the right JSON
// type, strings with standard escapes and valid UTF-8, numbers in range.
// Anything else (unknown or case-folded keys, null, lone surrogates,
// invalid UTF-8, malformed JSON) makes it give up and the body goes to
// encoding/json, which then decides: so the result is always what
// json.Unmarshal would give (FuzzDecodePage checks it).

// decodeFetch decodes a FETCH reply body into f.
func decodeFetch(body []byte, f *status.Fetch) error {
	p := pageParser{b: body, s: string(body)}
	var d pageDoc
	if p.page(&d, false) {
		*f = status.Fetch{Topic: d.topic, Next: d.next, Entries: d.entries}
		return nil
	}
	*f = status.Fetch{}
	return json.Unmarshal(body, f)
}

// decodeRead decodes a READ reply body into r.
func decodeRead(body []byte, r *status.Read) error {
	p := pageParser{b: body, s: string(body)}
	var d pageDoc
	if p.page(&d, true) {
		*r = status.Read{Group: d.group, Topic: d.topic, Entries: d.entries}
		return nil
	}
	*r = status.Read{}
	return json.Unmarshal(body, r)
}

// pageDoc holds the fields of either page document while it is parsed.
type pageDoc struct {
	group, topic string
	next         uint64
	entries      []status.Entry
}

// pageParser is a cursor over the body, held both as the bytes (scanned
// eight at a time) and as one string copy (sliced for the results). Every
// method returns false to give up; the caller then falls back to
// encoding/json.
type pageParser struct {
	b []byte
	s string // string(b)
	i int
}

// Bits of the keys seen, to refuse duplicates (encoding/json's
// last-one-wins is left to encoding/json).
const (
	seenGroup = 1 << iota
	seenTopic
	seenNext
	seenEntries
)

// page parses the whole body: one object, then only white space.
func (p *pageParser) page(d *pageDoc, read bool) bool {
	if !p.consume('{') {
		return false
	}
	if !p.consume('}') {
		seen := 0
		for {
			key, ok := p.str()
			if !ok || !p.consume(':') {
				return false
			}
			bit := 0
			switch {
			case key == "topic":
				bit = seenTopic
				d.topic, ok = p.str()
			case key == "entries":
				bit = seenEntries
				d.entries, ok = p.entries()
			case key == "next" && !read:
				bit = seenNext
				d.next, ok = p.uint(math.MaxUint64)
			case key == "group" && read:
				bit = seenGroup
				d.group, ok = p.str()
			}
			if bit == 0 || !ok || seen&bit != 0 {
				return false
			}
			seen |= bit
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return false
		}
	}
	p.skipSpace()
	return p.i == len(p.s)
}

// entriesCap is the first capacity of the entries slice: most pages are
// full, and growing from 0 to 1,000 would copy the entries ten times.
const entriesCap = 256

func (p *pageParser) entries() ([]status.Entry, bool) {
	if !p.consume('[') {
		return nil, false
	}
	es := make([]status.Entry, 0, min(entriesCap, len(p.s)/32))
	if p.consume(']') {
		return es, true
	}
	for {
		es = append(es, status.Entry{})
		if !p.entry(&es[len(es)-1]) {
			return nil, false
		}
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return es, true
		}
		return nil, false
	}
}

// Bits of the entry keys seen.
const (
	seenOffset = 1 << iota
	seenTimestamp
	seenDeliveries
	seenPayload
)

func (p *pageParser) entry(e *status.Entry) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	seen := 0
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return false
		}
		bit := 0
		switch key {
		case "offset":
			bit = seenOffset
			e.Offset, ok = p.uint(math.MaxUint64)
		case "timestamp_ms":
			bit = seenTimestamp
			e.TimestampMs, ok = p.int64()
		case "deliveries":
			bit = seenDeliveries
			var n uint64
			n, ok = p.uint(math.MaxUint32)
			e.Deliveries = uint32(n)
		case "payload":
			bit = seenPayload
			e.Payload, ok = p.str()
		}
		if bit == 0 || !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if p.consume(',') {
			continue
		}
		return p.consume('}')
	}
}

// skipSpace skips JSON white space.
func (p *pageParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, reporting whether c was there.
func (p *pageParser) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str parses a JSON string. Without escapes the result is a substring of
// the body (no allocation).
func (p *pageParser) str() (string, bool) {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false
	}
	p.i++
	start := p.i
	high := false
	for p.i < len(p.s) {
		p.skipPlain()
		if p.i >= len(p.s) {
			break
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if high && !utf8.ValidString(v) {
				return "", false // encoding/json substitutes U+FFFD
			}
			return v, true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false // invalid JSON
		case c >= utf8.RuneSelf:
			high = true
		}
		p.i++
	}
	return "", false
}

// skipPlain advances over string bytes that need no attention: ASCII
// other than '"', backslash and control bytes. It stops at (not after) any
// other byte.
func (p *pageParser) skipPlain() {
	for p.i+8 <= len(p.b) && plain8(binary.LittleEndian.Uint64(p.b[p.i:])) {
		p.i += 8
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return
		}
		p.i++
	}
}

// plain8 reports whether none of the eight bytes in w ends or escapes a
// string or needs checking: no '"', backslash, control byte (< 0x20) or
// non-ASCII byte. It uses the has-zero-byte and has-less-than tests of
// "Bit Twiddling Hacks", which can misplace a match but never report one
// that is not there (the fuzz tests cover every byte value).
func plain8(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	if w&highs != 0 {
		return false
	}
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return hasZero(w^(ones*'"'))|hasZero(w^(ones*'\\'))|((w-ones*0x20) & ^w & highs) == 0
}

// escaped finishes a string that has escapes; p.i is at the first
// backslash and start after the opening quote.
func (p *pageParser) escaped(start int) (string, bool) {
	buf := make([]byte, 0, p.i-start+64)
	buf = append(buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			// Escapes are ASCII and end any multi-byte sequence, so the raw
			// text is valid UTF-8 exactly when every unescaped run is.
			if !utf8.ValidString(p.s[start:p.i]) {
				return "", false
			}
			p.i++
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			run := p.i
			p.i++ // c itself: plain, or non-ASCII (validated at the end)
			p.skipPlain()
			buf = append(buf, p.s[run:p.i]...)
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", false
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low one is a
				// character; encoding/json turns the rest into U+FFFD.
				if r >= 0xdc00 || p.i+1 >= len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
					return "", false
				}
				p.i += 2
				lo, ok := p.hex4()
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return "", false
				}
				r = utf16.DecodeRune(r, lo)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", false
		}
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (p *pageParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// uint parses a non-negative JSON integer no greater than limit. Fractions
// and exponents are left to encoding/json (which rejects them for integer
// fields).
func (p *pageParser) uint(limit uint64) (uint64, bool) {
	p.skipSpace()
	start := p.i
	var n uint64
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.s[start] == '0') {
		return 0, false
	}
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// int64 parses a JSON integer that fits an int64.
func (p *pageParser) int64() (int64, bool) {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] < '0' || p.s[p.i] > '9') {
			return 0, false // "- 1" is not a number
		}
		n, ok := p.uint(1 << 63)
		return int64(-n), ok // -(1<<63) wraps to itself: MinInt64
	}
	n, ok := p.uint(math.MaxInt64)
	return int64(n), ok
}
