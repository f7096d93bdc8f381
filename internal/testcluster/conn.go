package testcluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/walrus-go/walrus/node/protocol"
)

// DefaultIOTimeout bounds every request a Conn makes.
const DefaultIOTimeout = 10 * time.Second

// Conn is a raw client-protocol connection: it writes 4-byte little-endian
// length-prefixed frames and reads framed replies, with no interpretation,
// so tests see exactly what the node sends.
type Conn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects to a client address.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testcluster: dial %s: %w", addr, err)
	}
	return &Conn{nc: nc, r: bufio.NewReader(nc), timeout: DefaultIOTimeout}, nil
}

// MustDial dials or fails the test; the connection is closed at cleanup.
func MustDial(t testing.TB, addr string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultIOTimeout)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// SetTimeout changes the per-request deadline.
func (c *Conn) SetTimeout(d time.Duration) { c.timeout = d }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Do sends line as one frame and returns the reply frame as text.
func (c *Conn) Do(line string) (string, error) {
	if err := c.Send(line); err != nil {
		return "", err
	}
	return c.Recv()
}

// Send writes line as one frame without reading the reply (pipelining).
func (c *Conn) Send(line string) error {
	return c.WriteRaw(protocol.AppendFrame(nil, []byte(line)))
}

// WriteRaw writes b as-is: a test builds malformed frames with it.
func (c *Conn) WriteRaw(b []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("testcluster: write: %w", err)
	}
	return nil
}

// Recv reads one reply frame.
func (c *Conn) Recv() (string, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return "", err
	}
	// Replies can be large (METRICS, big GET payloads); allow 64 MiB.
	b, err := protocol.ReadFrame(c.r, 64<<20)
	if err != nil {
		return "", fmt.Errorf("testcluster: read reply: %w", err)
	}
	return string(b), nil
}

// ExpectClosed reports nil when the peer closes the connection (EOF or
// reset) within the timeout without sending more data.
func (c *Conn) ExpectClosed() error {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	var b [1]byte
	n, err := c.r.Read(b[:])
	if n > 0 {
		return fmt.Errorf("testcluster: expected close, got byte %#x", b[0])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("testcluster: connection still open after %v", c.timeout)
	}
	return nil
}

// Frame returns the wire bytes of one frame with body (helper for raw tests).
func Frame(body string) []byte { return protocol.AppendFrame(nil, []byte(body)) }

// FrameWithLength returns a frame whose 4-byte prefix says n whatever the
// body's real length (for zero, oversized and truncated frames).
func FrameWithLength(n uint32, body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, n)
	return append(b, body...)
}
