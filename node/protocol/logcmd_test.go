package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walrus-go/walrus/node/record"
	"github.com/walrus-go/walrus/node/status"
)

func parseLogLine(t *testing.T, line string) (LogRequest, error) {
	t.Helper()
	req, err := ParseRequest([]byte(line))
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return ParseLog(req)
}

func TestParseLog(t *testing.T) {
	ok := map[string]LogRequest{
		"OFFSETS t":            {Command: CmdOffsets, Topic: "t"},
		"seek t 1700000000000": {Command: CmdSeek, Topic: "t", Time: 1700000000000},
		"FETCH t 0":            {Command: CmdFetch, Topic: "t", Max: DefaultFetchEntries},
		"FETCH t 5 10000":      {Command: CmdFetch, Topic: "t", Offset: 5, Max: 10000},
		"COMMIT g t 7":         {Command: CmdCommit, Group: "g", Topic: "t", Offset: 7},
		"COMMITTED g t":        {Command: CmdCommitted, Group: "g", Topic: "t"},
		"READ g t":             {Command: CmdRead, Group: "g", Topic: "t", Max: DefaultFetchEntries, AckWait: DefaultAckWait},
		"READ g t 5 1500":      {Command: CmdRead, Group: "g", Topic: "t", Max: 5, AckWait: 1500 * time.Millisecond},
		"ACK g t 1 2 3":        {Command: CmdAck, Group: "g", Topic: "t", Offsets: []uint64{1, 2, 3}},
		"GROUPS":               {Command: CmdGroups},
		"GROUPS t":             {Command: CmdGroups, Topic: "t"},
	}
	for line, want := range ok {
		got, err := parseLogLine(t, line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("%q: got %s want %s", line, gj, wj)
		}
	}
	bad := map[string]string{
		"OFFSETS":                             "usage: OFFSETS <topic>",
		"OFFSETS a b":                         "usage: OFFSETS",
		"SEEK t":                              "takes a topic and a time",
		"SEEK t -5":                           "not a Unix time",
		"SEEK t x":                            "not a Unix time",
		"FETCH t":                             "usage: FETCH",
		"FETCH t -1":                          "not a non-negative integer",
		"FETCH t 1.5":                         "not a non-negative integer",
		"FETCH t 0 0":                         "must be 1..10000",
		"FETCH t 0 10001":                     "must be 1..10000",
		"FETCH t 0 1 2":                       "usage: FETCH",
		"COMMIT g t":                          "usage: COMMIT",
		"COMMIT g t x":                        "not a non-negative integer",
		"COMMIT .. t 1":                       "invalid group name",
		"COMMITTED g":                         "usage: COMMITTED",
		"READ g":                              "usage: READ",
		"READ g t 0":                          "must be 1..10000",
		"READ g t 1 0":                        "ack_wait_ms",
		"READ g t 1 99999999999":              "ack_wait_ms",
		"READ g t 1 1 1":                      "usage: READ",
		"ACK g t":                             "at least one offset",
		"ACK g t 1 x":                         "not a non-negative integer",
		"GROUPS a b":                          "at most one topic",
		"OFFSETS " + strings.Repeat("x", 300): "topic name",
	}
	for line, want := range bad {
		_, err := parseLogLine(t, line)
		var re *RequestError
		if !errors.As(err, &re) || !strings.Contains(re.Message, want) || !strings.Contains(re.Message, "usage: ") {
			t.Errorf("%q: err %v, want it to mention %q and the usage", line, err, want)
		}
	}
}

func TestEntriesJSONMatchesSchema(t *testing.T) {
	entries := []record.Entry{
		{Offset: 3, Time: 1700000000001, Payload: []byte("plain"), Deliveries: 2},
		{Offset: 4, Time: 0, Payload: []byte("q\"uo\\te\n\t\x01 \u2028 ünï \xff end")},
		{Offset: 5, Time: 9, Payload: []byte{}},
	}
	var f status.Fetch
	if err := json.Unmarshal(FetchJSON(nil, "t\"x", 6, entries), &f); err != nil {
		t.Fatal(err)
	}
	if f.Topic != "t\"x" || f.Next != 6 || len(f.Entries) != 3 {
		t.Fatalf("fetch %+v", f)
	}
	for i, e := range f.Entries {
		if e.Offset != entries[i].Offset || e.TimestampMs != entries[i].Time || string(decodedPayload(t, e)) != string(entries[i].Payload) || e.Deliveries != 0 {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if f.Entries[0].Encoding != "" || f.Entries[1].Encoding != "base64" {
		t.Fatalf("encodings %q %q: want text, then base64 for invalid UTF-8", f.Entries[0].Encoding, f.Entries[1].Encoding)
	}
	var r status.Read
	if err := json.Unmarshal(ReadJSON(nil, "g", "t", entries[:1]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Group != "g" || r.Topic != "t" || r.Entries[0].Deliveries != 2 || r.Entries[0].Payload != "plain" {
		t.Fatalf("read %+v", r)
	}
}

func FuzzParseLog(f *testing.F) {
	for line := range logUsage {
		f.Add(line + " g t 1 2")
	}
	f.Add("ACK g t 1 18446744073709551615")
	f.Fuzz(func(t *testing.T, line string) {
		req, err := ParseRequest([]byte(line))
		if err != nil || !IsLogCommand(req.Command) {
			return
		}
		lr, err := ParseLog(req)
		if err != nil {
			return
		}
		if lr.Command != req.Command || (lr.Max < 0 || lr.Max > MaxFetchEntries) || len(lr.Offsets) > MaxAckOffsets {
			t.Fatalf("%q parsed to %+v", line, lr)
		}
	})
}

func FuzzEntriesJSON(f *testing.F) {
	f.Add([]byte("hello"), "t")
	f.Add([]byte("\xff\x00\"\\\u2028"), "\x7f")
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		var got status.Fetch
		if err := json.Unmarshal(FetchJSON(nil, topic, 1, []record.Entry{{Payload: payload}}), &got); err != nil {
			t.Fatalf("invalid JSON: %v", err)
		}
		if p := decodedPayload(t, got.Entries[0]); !bytes.Equal(p, payload) {
			t.Fatalf("payload %q, want %q", p, payload)
		}
		if (got.Entries[0].Encoding == "") != utf8.Valid(payload) {
			t.Fatalf("encoding %q for %q", got.Entries[0].Encoding, payload)
		}
	})
}

// decodedPayload returns an entry's bytes: base64-decoded when its
// encoding says so (payloads that are not valid UTF-8).
func decodedPayload(t *testing.T, e status.Entry) []byte {
	t.Helper()
	if e.Encoding != "base64" {
		return []byte(e.Payload)
	}
	b, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatalf("base64 payload %q: %v", e.Payload, err)
	}
	return b
}
