package hclogslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestLevelsNamesAndKeys is go-plugin's use: the handler owns the level,
// the name goes under "logger" and go-plugin's "plugin" key is renamed.
func TestLevelsNamesAndKeys(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("plugin", "bolt")
	l := New(base, Options{RenameKeys: map[string]string{"plugin": "plugin_path"}}).Named("walrus-bolt")
	if l.IsDebug() || !l.IsInfo() || l.GetLevel() != hclog.Info {
		t.Fatalf("levels: debug=%v info=%v level=%v", l.IsDebug(), l.IsInfo(), l.GetLevel())
	}
	l.Debug("dropped")
	l.Warn("plugin process exited", "plugin", "/usr/bin/bolt", "id", 7)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if line["level"] != "WARN" || line["logger"] != "walrus-bolt" || line["plugin"] != "bolt" || line["plugin_path"] != "/usr/bin/bolt" {
		t.Fatalf("unexpected line %v", line)
	}
}

// TestRaftShape is Raft's use: the name goes under "component", a level
// floor set by SetLevel drops lower lines, NoLevel always logs and Off
// never does.
func TestRaftShape(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       LevelTrace,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	l := New(base, Options{Name: "raft", NameKey: "component"})
	if !l.IsTrace() || l.GetLevel() != hclog.Trace {
		t.Fatalf("without a floor: trace=%v level=%v", l.IsTrace(), l.GetLevel())
	}
	l.SetLevel(hclog.Debug)
	if l.IsTrace() || !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Fatalf("levels: trace=%v debug=%v level=%v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}
	l.Trace("dropped by the floor")
	l.Log(hclog.Off, "dropped: off")
	l.Named("snapshot").With("id", "1-2-3").Info("starting snapshot", "last-index", 9)
	l.Log(hclog.NoLevel, "no level")
	l.SetLevel(hclog.Warn)
	l.Info("dropped after SetLevel")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from log.Logger")
	want := `level=INFO msg="starting snapshot" component=raft.snapshot id=1-2-3 last-index=9
level=INFO msg="no level" component=raft
level=ERROR msg="from log.Logger" component=raft
`
	if got := buf.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if r := l.ResetNamed("x"); r.Name() != "x" || r.(*Logger).floor() != hclog.Warn {
		t.Fatalf("ResetNamed: name %q floor %v", r.Name(), r.(*Logger).floor())
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestNilLoggerDiscards(t *testing.T) {
	l := New(nil, Options{})
	l.Error("nowhere")
	if l.GetLevel() != hclog.Off {
		t.Fatalf("GetLevel of a discarding logger = %v, want off", l.GetLevel())
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &LineWriter{log: func(s string) { lines = append(lines, s) }}
	_, _ = w.Write([]byte("one\r\ntw"))
	_, _ = w.Write([]byte("o\nthree"))
	w.Flush()
	if strings.Join(lines, "|") != "one|two|three" {
		t.Fatalf("lines %q", lines)
	}
}

// TestJSONShape checks a plugin's log lines carry the keys go-plugin's
// host parses to re-level them.
func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	logger := NewJSON(&buf, "mystore", slog.LevelInfo)
	logger.Debug("dropped")
	logger.Warn("disk slow", "segment", "logs/3")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["@level"] != "warn" || line["@message"] != "disk slow" || line["@module"] != "mystore" || line["segment"] != "logs/3" {
		t.Fatalf("unexpected line %v", line)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", line["@timestamp"].(string)); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
}
