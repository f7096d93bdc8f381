package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPartitions bounds the partitions of one Kafka topic.
const MaxPartitions = 1024

// ErrReservedName refuses a native topic name that names a partition log.
var ErrReservedName = errors.New("topic name is reserved for a Kafka partition")

// LogName is the Walrus log of partition p of Kafka topic topic.
func LogName(topic string, p int32) string {
	if p == 0 {
		return topic
	}
	return topic + "#" + strconv.Itoa(int(p))
}

// Reserved reports an error when name is "<T>#<p>" for p >= 1, the name of
// a Kafka partition log, which only the Kafka listener creates.
func Reserved(name string) error {
	if t, p := SplitLogName(name); p >= 1 {
		return fmt.Errorf("%w: %q is partition %d of Kafka topic %q (create it with a Kafka client, or pick a name without '#<n>')", ErrReservedName, name, p, t)
	}
	return nil
}

// validTopic checks Kafka's topic name rules: 1..249 of [a-zA-Z0-9._-],
// not "." or "..".
func validTopic(name string) error {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return fmt.Errorf("invalid Kafka topic name %q: want 1..249 characters, not '.' or '..'", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid Kafka topic name %q: only a-z, A-Z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}

// SplitLogName is LogName's inverse: the Kafka topic and partition a log
// holds (a native topic is partition 0 of itself).
func SplitLogName(name string) (topic string, p int32) {
	i := strings.LastIndexByte(name, '#')
	if i < 0 {
		return name, 0
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 1 || LogName(name[:i], int32(n)) != name {
		return name, 0
	}
	return name[:i], int32(n)
}
