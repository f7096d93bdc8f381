package clicmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal. Colours, progress bars and
// screen clearing happen only then, so piped output stays plain.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// palette colours text when enabled (stdout is a terminal and NO_COLOR is
// unset, https://no-color.org).
type palette struct{ on bool }

func newPalette(w io.Writer, env func(string) string) palette {
	return palette{on: isTerminal(w) && env("NO_COLOR") == "" && env("TERM") != "dumb"}
}

func (p palette) wrap(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p palette) green(s string) string  { return p.wrap("32", s) }
func (p palette) red(s string) string    { return p.wrap("31", s) }
func (p palette) yellow(s string) string { return p.wrap("33", s) }
func (p palette) cyan(s string) string   { return p.wrap("36", s) }
func (p palette) bold(s string) string   { return p.wrap("1", s) }
func (p palette) dim(s string) string    { return p.wrap("2", s) }

// formatJSON returns body unchanged, or indented when pretty. A body that is
// not JSON is returned as it is: the node's reply is shown, never hidden.
func formatJSON(body []byte, pretty bool) []byte {
	if !pretty {
		return body
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return body
	}
	return buf.Bytes()
}

// colorJSON colours the keys of indented JSON (one key per line, as
// json.Indent writes it). Only used on a terminal.
func colorJSON(p palette, indented []byte) string {
	if !p.on {
		return string(indented)
	}
	var b strings.Builder
	for line := range strings.Lines(string(indented)) {
		trimmed := strings.TrimLeft(line, " ")
		if strings.HasPrefix(trimmed, `"`) {
			if end := strings.Index(trimmed, `":`); end > 0 {
				indent := line[:len(line)-len(trimmed)]
				b.WriteString(indent + p.cyan(trimmed[:end+1]) + trimmed[end+1:])
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// writeJSONValue prints v as JSON (indented when pretty) followed by a newline.
func writeJSONValue(w io.Writer, v any, pretty bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // payloads are shown as they are, not made safe for HTML
	if pretty {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// table is a minimal aligned text table.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cell renders one JSON value for a table: scalars as themselves, null as
// "-", small objects and arrays compactly, big ones as their size.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		if b, err := json.Marshal(x); err == nil && len(b) <= 40 {
			return string(b)
		}
		return fmt.Sprintf("{%d keys}", len(x))
	case []any:
		if b, err := json.Marshal(x); err == nil && len(b) <= 40 {
			return string(b)
		}
		return fmt.Sprintf("[%d items]", len(x))
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// objectTable turns a JSON array of objects into a table whose columns are
// the union of the objects' keys: the preferred ones first, in that order,
// then the others sorted. Used by topics, whose objects the node may extend.
func objectTable(objs []map[string]any, preferred []string) *table {
	seen := map[string]bool{}
	var cols []string
	for _, k := range preferred {
		for _, o := range objs {
			if _, ok := o[k]; ok {
				cols = append(cols, k)
				seen[k] = true
				break
			}
		}
	}
	var rest []string
	for _, o := range objs {
		for k := range o {
			if !seen[k] {
				seen[k] = true
				rest = append(rest, k)
			}
		}
	}
	sort.Strings(rest)
	cols = append(cols, rest...)
	t := &table{header: cols}
	for _, o := range objs {
		row := make([]string, len(cols))
		for i, k := range cols {
			if v, ok := o[k]; ok {
				row[i] = cell(v)
			} else {
				row[i] = "-"
			}
		}
		t.rows = append(t.rows, row)
	}
	return t
}
