package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/walrus-go/walrus/backends/memstore"
	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/engine/enginetest"
)

// connect serves store in-process over a real gRPC connection (go-plugin's
// test conn, default server message limits) and returns the host-side
// client plus the server to stop.
func connect(t *testing.T, store engine.SegmentStore) (*Client, *plugin.GRPCServer) {
	t.Helper()
	c, server, _ := connectPlugin(t, store)
	return c, server
}

// connectPlugin is connect that also returns the plugin-side glue, whose
// Stop ends the data channel (as the plugin process exiting would).
func connectPlugin(t *testing.T, store engine.SegmentStore) (*Client, *plugin.GRPCServer, *Plugin) {
	t.Helper()
	p := &Plugin{Impl: store}
	t.Cleanup(p.Stop) // runs last: after the clients below are gone
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: p})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	c := raw.(*Client)
	t.Cleanup(c.Release)
	return c, server, p
}

// failingStore returns err from every method.
type failingStore struct{ err error }

func (f failingStore) Append(context.Context, engine.SegmentID, [][]byte) (uint64, error) {
	return 0, f.err
}
func (f failingStore) Read(context.Context, engine.SegmentID, uint64, int, int) ([][]byte, error) {
	return nil, f.err
}
func (f failingStore) Seal(context.Context, engine.SegmentID) (engine.SegmentInfo, error) {
	return engine.SegmentInfo{}, f.err
}
func (f failingStore) Stat(context.Context, engine.SegmentID) (engine.SegmentInfo, error) {
	return engine.SegmentInfo{}, f.err
}
func (f failingStore) List(context.Context, string) ([]engine.SegmentInfo, error) { return nil, f.err }
func (f failingStore) Delete(context.Context, engine.SegmentID) error             { return f.err }
func (f failingStore) Sync(context.Context) error                                 { return f.err }
func (f failingStore) Close() error                                               { return f.err }

// TestErrorRoundTrip proves errors.Is holds on the host side for every
// sentinel the plugin's store returns, through every method, and that the
// plugin's message survives.
func TestErrorRoundTrip(t *testing.T) {
	for _, row := range errorTable {
		t.Run(row.reason, func(t *testing.T) {
			perr := fmt.Errorf("fakestore: op logs/3: %w", row.err)
			c, _ := connect(t, failingStore{err: perr})
			ctx := t.Context()
			id := engine.SegmentID{Topic: "logs", Segment: 3}
			// close last: after it the client answers ErrClosed locally.
			calls := []struct {
				name string
				call func() error
			}{
				{"append", func() error { _, err := c.Append(ctx, id, [][]byte{[]byte("x")}); return err }},
				{"read", func() error { _, err := c.Read(ctx, id, 0, 1, 1); return err }},
				{"seal", func() error { _, err := c.Seal(ctx, id); return err }},
				{"stat", func() error { _, err := c.Stat(ctx, id); return err }},
				{"list", func() error { _, err := c.List(ctx, ""); return err }},
				{"delete", func() error { return c.Delete(ctx, id) }},
				{"sync", func() error { return c.Sync(ctx) }},
				{"close", func() error { return c.Close() }},
			}
			for _, tc := range calls {
				name, err := tc.name, tc.call()
				if !errors.Is(err, row.err) {
					t.Errorf("%s: got %v, want errors.Is %v", name, err, row.err)
					continue
				}
				if !strings.Contains(err.Error(), perr.Error()) {
					t.Errorf("%s: message %q lost the plugin's text %q", name, err, perr)
				}
				for _, other := range errorTable {
					if other.reason != row.reason && errors.Is(err, other.err) {
						t.Errorf("%s: %v also matches %v", name, err, other.err)
					}
				}
				var remote *RemoteError
				if !errors.As(err, &remote) || remote.Code != row.code || remote.Reason != row.reason {
					t.Errorf("%s: got %#v, want code %v reason %s", name, remote, row.code, row.reason)
				}
			}
		})
	}
}

func TestUnknownErrorKeepsMessage(t *testing.T) {
	c, _ := connect(t, failingStore{err: errors.New("disk on fire")})
	_, err := c.Stat(t.Context(), engine.SegmentID{Topic: "a"})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v, want the plugin's message", err)
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			t.Fatalf("%v matches %v, want no sentinel", err, row.err)
		}
	}
}

// TestTransportFailureIsUnavailable: once the plugin side is gone, every
// call fails with ErrUnavailable saying "backend unavailable".
func TestTransportFailureIsUnavailable(t *testing.T) {
	c, server, p := connectPlugin(t, memstore.New())
	id := engine.SegmentID{Topic: "logs"}
	if _, err := c.Append(t.Context(), id, [][]byte{[]byte("a")}); err != nil {
		t.Fatalf("append: %v", err)
	}
	server.Stop()
	p.Stop()
	for name, call := range map[string]func() error{
		"append": func() error { _, err := c.Append(t.Context(), id, [][]byte{[]byte("b")}); return err },
		"read":   func() error { _, err := c.Read(t.Context(), id, 0, 1, 1); return err },
		"list":   func() error { _, err := c.List(t.Context(), ""); return err },
	} {
		err := call()
		if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "backend unavailable") {
			t.Errorf("%s after server stop: got %v, want ErrUnavailable", name, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	c, _ := connect(t, memstore.New())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Append(ctx, engine.SegmentID{Topic: "logs"}, [][]byte{[]byte("a")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestClosedClient(t *testing.T) {
	c, _ := connect(t, memstore.New())
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := c.Stat(t.Context(), engine.SegmentID{Topic: "a"}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("stat after close: %v, want ErrClosed", err)
	}
}

// TestLargeBatch: a 10 MiB batch of 1 MiB entries plus one 5 MiB entry
// crosses gRPC's 4 MiB default message limit in both directions.
func TestLargeBatch(t *testing.T) {
	c, _ := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "big", Segment: 1}
	var batch [][]byte
	for i := range 10 {
		batch = append(batch, bytes.Repeat([]byte{byte('a' + i)}, 1<<20))
	}
	huge := make([]byte, 5<<20)
	for i := range huge {
		huge[i] = byte(i * 7)
	}
	batch = append(batch, huge, nil)
	first, err := c.Append(t.Context(), id, batch)
	if err != nil || first != 0 {
		t.Fatalf("append 15 MiB: first=%d err=%v", first, err)
	}
	got, err := c.Read(t.Context(), id, 0, 100, 64<<20)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != len(batch) {
		t.Fatalf("read %d entries, want %d", len(got), len(batch))
	}
	for i := range batch {
		if !bytes.Equal(got[i], batch[i]) {
			t.Fatalf("entry %d differs (len %d, want %d)", i, len(got[i]), len(batch[i]))
		}
	}
	// One entry over maxBytes is still returned whole (at-least-one rule).
	one, err := c.Read(t.Context(), id, 10, 5, 1)
	if err != nil || len(one) != 1 || !bytes.Equal(one[0], huge) {
		t.Fatalf("read single huge entry: %d entries, err %v", len(one), err)
	}
}

// TestManyEmptyEntries splits the length list across chunks.
func TestManyEmptyEntries(t *testing.T) {
	c, _ := connect(t, memstore.New())
	id := engine.SegmentID{Topic: "empty"}
	batch := make([][]byte, chunkSizesMax*2+3)
	if _, err := c.Append(t.Context(), id, batch); err != nil {
		t.Fatalf("append: %v", err)
	}
	info, err := c.Stat(t.Context(), id)
	if err != nil || info.Entries != uint64(len(batch)) || info.Bytes != 0 {
		t.Fatalf("stat: %+v %v", info, err)
	}
	got, err := c.Read(t.Context(), id, 0, len(batch), 1)
	if err != nil || len(got) != len(batch) {
		t.Fatalf("read: %d entries, %v", len(got), err)
	}
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(tb testing.TB, dir string) (engine.SegmentStore, error) {
			c, _ := connect(t, memstore.New())
			return c, nil
		},
		NoReopen: true,
	})
}
