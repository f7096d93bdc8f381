// Package kframe is the part of Kafka's wire format around the messages
// kmsg encodes: the request header's client id and tagged fields, and the
// response frame.
package kframe

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrProtocol is why a connection is closed: a request that cannot be
// parsed, or an API key or version not served.
var ErrProtocol = errors.New("kafka protocol error")

// ClientID splits a request header's nullable client id from the rest
// (nil for a null or empty id).
func ClientID(b []byte) (id, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("%w: truncated request header", ErrProtocol)
	}
	l := int16(binary.BigEndian.Uint16(b))
	if l <= 0 {
		return nil, b[2:], nil
	}
	if len(b) < 2+int(l) {
		return nil, nil, fmt.Errorf("%w: truncated client id", ErrProtocol)
	}
	return b[2 : 2+int(l)], b[2+int(l):], nil
}

// SkipTags skips a flexible request header's tagged fields.
func SkipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad tagged fields", ErrProtocol)
	}
	b = b[w:]
	for range n {
		if _, w = binary.Uvarint(b); w <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrProtocol)
		}
		b = b[w:]
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return nil, fmt.Errorf("%w: bad tag length", ErrProtocol)
		}
		b = b[w+int(l):]
	}
	return b, nil
}

// Frame appends size, correlation id, the header's tag buffer when the
// response header is flexible, and the body.
func Frame(out []byte, corr int32, resp kmsg.Response, tags bool) []byte {
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	if tags {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}
