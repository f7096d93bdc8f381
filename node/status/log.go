package status

// The replies of the log commands (OFFSETS, SEEK, FETCH, COMMITTED, READ,
// GROUPS). The node writes FETCH and READ replies with a hand-written
// encoder for speed; these types are their schema, and a test keeps the
// two in agreement.

// Offsets is the OFFSETS reply: entries Earliest..Latest-1 are readable.
type Offsets struct {
	Topic    string `json:"topic"`
	Earliest uint64 `json:"earliest"`
	Latest   uint64 `json:"latest"`
}

// Seek is the SEEK reply: the first offset whose timestamp is at or after
// the asked time, or the topic's latest offset when there is none.
type Seek struct {
	Topic  string `json:"topic"`
	Offset uint64 `json:"offset"`
}

// Entry is one entry of a FETCH or READ reply. TimestampMs is the append
// time (Unix ms) set by the segment leader (0 for entries written before
// the node recorded times). Deliveries is set by READ only.
type Entry struct {
	Offset      uint64 `json:"offset"`
	TimestampMs int64  `json:"timestamp_ms"`
	Deliveries  uint32 `json:"deliveries,omitempty"`
	// Encoding is "base64" when the payload is not valid UTF-8 (a binary
	// value written by a Kafka client): Payload is then its base64 (std).
	Encoding string `json:"encoding,omitempty"`
	Payload  string `json:"payload"`
}

// Fetch is the FETCH reply. Next is where the following FETCH starts.
type Fetch struct {
	Topic   string  `json:"topic"`
	Next    uint64  `json:"next"`
	Entries []Entry `json:"entries"`
}

// Committed is the COMMITTED reply. Offset is -1 when the group has
// committed nothing on the topic; Lag counts the readable entries at or
// after the committed offset (from Earliest when nothing is committed).
type Committed struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	Offset int64  `json:"offset"`
	Lag    uint64 `json:"lag"`
	// Skipped counts entries retention deleted before the group read them.
	Skipped uint64 `json:"skipped"`
}

// Read is the READ reply: entries leased to the request.
type Read struct {
	Group   string  `json:"group"`
	Topic   string  `json:"topic"`
	Entries []Entry `json:"entries"`
}

// Group is one element of the GROUPS reply. Pending counts the entries
// delivered and not yet acknowledged.
type Group struct {
	Group   string `json:"group"`
	Topic   string `json:"topic"`
	Offset  int64  `json:"offset"`
	Lag     uint64 `json:"lag"`
	Pending uint64 `json:"pending"`
	Skipped uint64 `json:"skipped"`
}
