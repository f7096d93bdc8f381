package kafka

import (
	"errors"
	"testing"
)

// LogName and SplitLogName are inverses on partition logs; Reserved
// refuses exactly the names of partitions p >= 1.
func TestLogNames(t *testing.T) {
	for _, c := range []struct {
		name     string
		topic    string
		part     int32
		reserved bool
	}{
		{"orders", "orders", 0, false},
		{"orders#1", "orders", 1, true},
		{"orders#5000", "orders", 5000, true},
		{"a#b#7", "a#b", 7, true},
		{"orders#0", "orders#0", 0, false},
		{"orders#01", "orders#01", 0, false},
		{"orders#-1", "orders#-1", 0, false},
		{"orders#x", "orders#x", 0, false},
		{"orders#99999999999", "orders#99999999999", 0, false},
		{"#3", "", 3, true},
	} {
		topic, p := SplitLogName(c.name)
		if topic != c.topic || p != c.part {
			t.Errorf("SplitLogName(%q) = %q, %d; want %q, %d", c.name, topic, p, c.topic, c.part)
		}
		if p >= 1 && LogName(topic, p) != c.name {
			t.Errorf("LogName(%q, %d) = %q", topic, p, LogName(topic, p))
		}
		if err := Reserved(c.name); errors.Is(err, ErrReservedName) != c.reserved {
			t.Errorf("Reserved(%q) = %v", c.name, err)
		}
	}
}
