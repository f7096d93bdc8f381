package hclogadapter

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLevelsNamesAndKeys(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("plugin", "bolt")
	l := New(base).Named("walrus-bolt")
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
