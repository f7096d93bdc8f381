package kafka_test

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kbatch"
	"github.com/walrus-go/walrus/node/record"
)

// request frames req (client id "t") as a Kafka client would.
func request(req kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = append(b, 0, 1, 't')
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// roundTrip sends req and decodes the response into resp.
func roundTrip(t *testing.T, c net.Conn, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	if _, err := c.Write(request(req, 7)); err != nil {
		t.Fatal(err)
	}
	body := readFrame(t, c)
	if got := int32(binary.BigEndian.Uint32(body)); got != 7 {
		t.Fatalf("correlation id %d", got)
	}
	body = body[4:]
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %T: %v", resp, err)
	}
}

func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return body
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
		t.Fatalf("%s: connection not closed cleanly (read %d bytes, %v)", what, n, err)
	}
}

func apiVersionsOK(t *testing.T, addr string) {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	resp := kmsg.NewPtrApiVersionsResponse()
	roundTrip(t, dialRaw(t, addr), req, resp)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions: %+v", resp)
	}
}

func TestBadInput(t *testing.T) {
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, "bad", 1, nil)
	waitPartitions(t, nodes, "bad", 1)
	r, _ := nodes[0].Metadata().Route("bad")
	leader := nodes[r.Leader-1].KafkaAddr()

	t.Run("api versions newer than served", func(t *testing.T) {
		c := dialRaw(t, addrs[0])
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 99
		b := request(req, 7)
		b = b[:4+8+3] // a v99 body cannot be encoded: send only the header
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		body := readFrame(t, c)
		resp := kmsg.NewPtrApiVersionsResponse() // version 0
		if err := resp.ReadFrom(body[4:]); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("answer %+v %v", resp, err)
		}
	})
	t.Run("unknown api key", func(t *testing.T) {
		c := dialRaw(t, addrs[1])
		b := []byte{0, 0, 0, 11, 0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0, 1, 't'}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "unknown key")
	})
	t.Run("unserved version", func(t *testing.T) {
		c := dialRaw(t, addrs[1])
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 0 // Metadata v0 is not served
		if _, err := c.Write(request(req, 1)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "metadata v0")
	})
	t.Run("oversized size prefix", func(t *testing.T) {
		c := dialRaw(t, addrs[2])
		if _, err := c.Write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0}); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "oversized")
	})
	t.Run("truncated request", func(t *testing.T) {
		c := dialRaw(t, addrs[2])
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		b := request(req, 1)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4-2)) // the body ends early
		if _, err := c.Write(b[:len(b)-2]); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "truncated body")
		c2 := dialRaw(t, addrs[2])
		if _, err := c2.Write(b[:len(b)/2]); err != nil { // then hang up mid-request
			t.Fatal(err)
		}
		_ = c2.Close()
	})

	good := kbatch.Encode(nil, []kbatch.Entry{{K: record.Keyed{Timestamp: 5, Key: []byte("k"), Value: []byte("v")}}, {Off: 1, K: record.Keyed{Timestamp: 6, Value: []byte("w")}}})
	produce := func(t *testing.T, batch []byte) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "bad"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = batch
		tp.Partitions = append(tp.Partitions, p)
		req.Topics = append(req.Topics, tp)
		resp := kmsg.NewPtrProduceResponse()
		roundTrip(t, dialRaw(t, leader), req, resp)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	corrupt := func(edit func(b []byte) []byte) []byte {
		return edit(append([]byte(nil), good...))
	}
	for name, batch := range map[string][]byte{
		"wrong crc":           corrupt(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"batch length lies":   corrupt(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], uint32(len(b))); return b }),
		"batch length short":  corrupt(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 20); return b }),
		"record count lies":   recrc(corrupt(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 3); return b })),
		"record length lies":  recrc(corrupt(func(b []byte) []byte { b[61] += 2; return b })),
		"trailing bytes":      append(corrupt(func(b []byte) []byte { return b }), 1, 2, 3),
		"unknown compression": recrc(corrupt(func(b []byte) []byte { b[22] |= 7; return b })),
	} {
		if code := produce(t, batch); code != kerr.CorruptMessage.Code {
			t.Fatalf("%s: error code %d, want CORRUPT_MESSAGE", name, code)
		}
	}
	// Only the partition's leader takes a produce: the others answer
	// NOT_LEADER_OR_FOLLOWER so the client refreshes its metadata.
	for _, n := range nodes {
		if n.ID() == r.Leader {
			continue
		}
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "bad"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = good
		tp.Partitions = append(tp.Partitions, p)
		req.Topics = append(req.Topics, tp)
		resp := kmsg.NewPtrProduceResponse()
		roundTrip(t, dialRaw(t, n.KafkaAddr()), req, resp)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce on node %d (leader %d): code %d, want NOT_LEADER_OR_FOLLOWER", n.ID(), r.Leader, code)
		}
	}
	// Nothing corrupt was stored; the node still serves and stores a good batch.
	end, err := adm.ListEndOffsets(testCtx(t), "bad")
	if o, _ := end.Lookup("bad", 0); err != nil || o.Offset != 0 {
		t.Fatalf("end offset after bad batches: %d %v", o.Offset, err)
	}
	if code := produce(t, good); code != 0 {
		t.Fatalf("good batch: code %d", code)
	}
	for _, a := range addrs {
		apiVersionsOK(t, a)
	}
}

// recrc recomputes a batch's CRC after an edit, so only the edit is wrong.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32c(b[21:]))
	return b
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
