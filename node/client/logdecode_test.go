package client

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/walrus-go/walrus/node/status"
)

// checkPage decodes body both ways and fails when the hand-written path
// accepts something encoding/json would decode differently or reject. It
// reports whether the fast path took it as a FETCH and as a READ reply.
func checkPage(t testing.TB, body []byte) (fastFetch, fastRead bool) {
	t.Helper()
	var wantF status.Fetch
	errF := json.Unmarshal(body, &wantF)
	p := pageParser{b: body, s: string(body)}
	var d pageDoc
	if p.page(&d, false) {
		fastFetch = true
		got := status.Fetch{Topic: d.topic, Next: d.next, Entries: d.entries}
		if errF != nil || !reflect.DeepEqual(got, wantF) {
			t.Fatalf("fetch %q:\nfast   %+v\njson   %+v (%v)", body, got, wantF, errF)
		}
	}
	var gotF status.Fetch
	if err := decodeFetch(body, &gotF); (err != nil) != (errF != nil) || (err == nil && !reflect.DeepEqual(gotF, wantF)) {
		t.Fatalf("decodeFetch %q = %+v, %v; json %+v, %v", body, gotF, err, wantF, errF)
	}

	var wantR status.Read
	errR := json.Unmarshal(body, &wantR)
	p = pageParser{b: body, s: string(body)}
	d = pageDoc{}
	if p.page(&d, true) {
		fastRead = true
		got := status.Read{Group: d.group, Topic: d.topic, Entries: d.entries}
		if errR != nil || !reflect.DeepEqual(got, wantR) {
			t.Fatalf("read %q:\nfast   %+v\njson   %+v (%v)", body, got, wantR, errR)
		}
	}
	var gotR status.Read
	if err := decodeRead(body, &gotR); (err != nil) != (errR != nil) || (err == nil && !reflect.DeepEqual(gotR, wantR)) {
		t.Fatalf("decodeRead %q = %+v, %v; json %+v, %v", body, gotR, err, wantR, errR)
	}
	return fastFetch, fastRead
}

// pageSeeds are real replies and the awkward cases around them.
var pageSeeds = []string{
	`{"topic":"logs","next":3,"entries":[{"offset":1,"timestamp_ms":1764111111000,"payload":"hello"},{"offset":2,"timestamp_ms":1764111111001,"payload":"w\u00f6rld \"q\" \\ \n"}]}`,
	`{"group":"g","topic":"logs","entries":[{"offset":7,"timestamp_ms":5,"deliveries":2,"payload":"x"}]}`,
	`{"topic":"t","next":0,"entries":[]}`,
	` { "topic" : "t" , "next" : 18446744073709551615 , "entries" : [ { } ] } `,
	`{"topic":"t","next":18446744073709551616,"entries":[]}`,
	`{"topic":"t","next":1.0,"entries":[]}`,
	`{"topic":"t","next":1e2,"entries":[]}`,
	`{"topic":"t","next":-1,"entries":[]}`,
	`{"topic":"t","next":01,"entries":[]}`,
	`{"topic":"t","entries":[{"timestamp_ms":-9223372036854775808,"payload":""}]}`,
	`{"topic":"t","entries":[{"timestamp_ms":-9223372036854775809}]}`,
	`{"topic":"t","entries":[{"timestamp_ms":-0}]}`,
	`{"topic":"t","entries":[{"timestamp_ms":-}]}`,
	`{"topic":"t","entries":[{"deliveries":4294967296}]}`,
	`{"topic":"t","entries":null}`,
	`{"topic":null}`,
	`{"Topic":"case folded"}`,
	`{"topic":"a","topic":"b"}`,
	`{"top\u0069c":"escaped key"}`,
	`{"topic":"t","extra":{"nested":[1,2]}}`,
	`{"topic":"\ud83e\udd2d pair"}`,
	`{"topic":"\ud83e lone high"}`,
	`{"topic":"\udd2d lone low"}`,
	`{"topic":"\ud83e\u0041 bad pair"}`,
	"{\"topic\":\"raw \xff byte\"}",
	"{\"topic\":\"raw \xe2\\n\x82\xac split\"}",
	"{\"topic\":\"ctl \x01\"}",
	`{"topic":"\/\b\f\r\t\u003c\u2028"}`,
	`{"topic":"bad \x escape"}`,
	`{"topic":"t"} trailing`,
	`{"topic":"t"`,
	`[]`,
	``,
	`EMPTY`,
	`{"topic":"t","entries":[{"offset":1,"payload":"a"},]}`,
	`{"topic":"t","entries":[{"offset":1,"payload":"a"}}`,
	`{"topic":"t","entries":[{"offset":1 "payload":"a"}]}`,
	`{"topic":"t","entries":[{"offset":"1"}]}`,
	`{"topic":"t","entries":[{"offset":1,"offset":2}]}`,
	`{"group":"g","topic":"t","next":1}`,
}

func TestDecodePageMatchesEncodingJSON(t *testing.T) {
	for _, s := range pageSeeds {
		checkPage(t, []byte(s))
	}
	// The documents the node writes must take the fast path.
	for _, s := range pageSeeds[:3] {
		if fetch, read := checkPage(t, []byte(s)); !fetch && !read {
			t.Errorf("fast path refused %s", s)
		}
	}
}

// FuzzDecodePage: on any input the hand-written decoder agrees with
// encoding/json (or defers to it).
func FuzzDecodePage(f *testing.F) {
	for _, s := range pageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPage(t, body)
	})
}

// FuzzDecodePayload: any payload, encoded as encoding/json encodes it (the
// node's encoder is held to the same output), is decoded by the fast path
// to exactly what encoding/json decodes.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"uote\\", "ctl\x00\x1f\n\t", "<&>", "\u2028\u2029", "🦭 w\u00f6rld", "bad \xff utf8", "\xed\xa0\x80"} {
		f.Add(s, uint64(1), int64(-5), uint32(2))
	}
	f.Fuzz(func(t *testing.T, payload string, off uint64, ts int64, del uint32) {
		doc := status.Read{Group: "g", Topic: "t", Entries: []status.Entry{
			{Offset: off, TimestampMs: ts, Deliveries: del, Payload: payload},
			{Offset: off + 1, Payload: payload + payload},
		}}
		body, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, read := checkPage(t, body); !read {
			t.Fatalf("fast path refused encoding/json output %s", body)
		}
		if utf8.ValidString(payload) {
			var got status.Read
			if err := decodeRead(body, &got); err != nil || got.Entries[0].Payload != payload {
				t.Fatalf("payload %q came back as %q (%v)", payload, got.Entries[0].Payload, err)
			}
		}
	})
}

// pageBody builds a FETCH reply of n entries with payloadBytes-byte
// payloads, every tenth with characters that need escaping.
func pageBody(n, payloadBytes int) []byte {
	f := status.Fetch{Topic: "bench", Next: uint64(n)}
	for i := range n {
		p := strings.Repeat("x", payloadBytes)
		if i%10 == 0 {
			p = "q\"\n\t" + p[4:]
		}
		f.Entries = append(f.Entries, status.Entry{Offset: uint64(i), TimestampMs: 1764111111000 + int64(i), Payload: p})
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecodePage compares encoding/json with the hand-written decoder
// on one FETCH page. entries/s is the figure; the consumer target is well
// over 1M/s through one client, so decoding must cost far less than 1 µs
// per entry.
func BenchmarkDecodePage(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		body := pageBody(1000, size)
		for _, dec := range []struct {
			name string
			fn   func([]byte, *status.Fetch) error
		}{
			{"encoding-json", func(b []byte, f *status.Fetch) error { *f = status.Fetch{}; return json.Unmarshal(b, f) }},
			{"hand", decodeFetch},
		} {
			b.Run(fmt.Sprintf("entries=1000/payload=%d/%s", size, dec.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				var f status.Fetch
				for b.Loop() {
					if err := dec.fn(body, &f); err != nil || len(f.Entries) != 1000 {
						b.Fatal(err, len(f.Entries))
					}
				}
				b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}
