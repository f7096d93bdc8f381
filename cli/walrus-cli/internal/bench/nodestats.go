package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NodeStats is what one node's /metrics said after a topics run.
type NodeStats struct {
	HTTP     string `json:"http"`
	NodeID   string `json:"node_id,omitempty"`
	IsLeader bool   `json:"raft_leader"`
	// RSSBytes is process_resident_memory_bytes.
	RSSBytes float64 `json:"rss_bytes"`
	// DataDirBytes is walrus_data_dir_bytes (allocated blocks, like du),
	// from a walk that started after the run ended unless DataDirStale.
	DataDirBytes float64 `json:"data_dir_bytes"`
	DataDirStale bool    `json:"data_dir_stale,omitempty"`
	// Raft metadata snapshot: size of the latest, and the latest persist
	// and restore durations (0 = none since the node started).
	SnapshotBytes          float64 `json:"raft_snapshot_bytes"`
	SnapshotPersistSeconds float64 `json:"raft_snapshot_persist_seconds"`
	SnapshotRestoreSeconds float64 `json:"raft_snapshot_restore_seconds"`
	Topics                 float64 `json:"topics"`
	Error                  string  `json:"error,omitempty"`
}

// The series NodeStats reads (each node exports one of each).
var nodeSeries = []string{
	"process_resident_memory_bytes", "walrus_data_dir_bytes", "walrus_data_dir_walk_timestamp_seconds",
	"walrus_raft_snapshot_bytes", "walrus_raft_snapshot_persist_seconds", "walrus_raft_snapshot_restore_seconds",
	"walrus_raft_is_leader", "walrus_topics",
}

// maxMetricsBytes bounds one /metrics answer read by ScrapeNodes.
const maxMetricsBytes = 64 << 20

// ScrapeNodes reads every node's /metrics at once. A node whose data
// directory walk is older than since is scraped again every second until
// the walk is newer or wait has passed (then DataDirStale is set). A node
// that cannot be scraped gets Error and zeros.
//
// With tlsConf set, addresses without a scheme are scraped over HTTPS
// with it (the nodes' tls.* settings cover the HTTP port too).
func ScrapeNodes(ctx context.Context, addrs []string, since time.Time, wait time.Duration, tlsConf *tls.Config) []NodeStats {
	out := make([]NodeStats, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		if tlsConf != nil && !strings.Contains(addr, "://") {
			addr = "https://" + addr
		}
		wg.Go(func() { out[i] = scrapeNode(ctx, addr, since, wait, tlsConf) })
	}
	wg.Wait()
	return out
}

func scrapeNode(ctx context.Context, addr string, since time.Time, wait time.Duration, tlsConf *tls.Config) NodeStats {
	deadline := time.Now().Add(wait)
	hc := &http.Client{Timeout: 30 * time.Second}
	if tlsConf != nil {
		hc.Transport = &http.Transport{TLSClientConfig: tlsConf}
	}
	for {
		st, walked, err := scrapeOnce(ctx, hc, addr)
		if err != nil {
			return NodeStats{HTTP: addr, Error: err.Error()}
		}
		if !walked.Before(since) {
			return st
		}
		if !time.Now().Before(deadline) {
			st.DataDirStale = true
			return st
		}
		select {
		case <-ctx.Done():
			st.DataDirStale = true
			return st
		case <-time.After(time.Second):
		}
	}
}

var errNoMetric = errors.New("metric missing")

func scrapeOnce(ctx context.Context, hc *http.Client, addr string) (NodeStats, time.Time, error) {
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url = strings.TrimSuffix(url, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return NodeStats{}, time.Time{}, fmt.Errorf("bench: scrape %s: %w", addr, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return NodeStats{}, time.Time{}, fmt.Errorf("bench: scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return NodeStats{}, time.Time{}, fmt.Errorf("bench: scrape %s: %s", url, resp.Status)
	}
	vals, nodeID, err := parseMetrics(io.LimitReader(resp.Body, maxMetricsBytes), nodeSeries)
	if err != nil {
		return NodeStats{}, time.Time{}, fmt.Errorf("bench: scrape %s: %w", url, err)
	}
	for _, name := range nodeSeries {
		if _, ok := vals[name]; !ok {
			return NodeStats{}, time.Time{}, fmt.Errorf("bench: scrape %s: %s: %w (a node older than this walrus-cli?)", url, name, errNoMetric)
		}
	}
	st := NodeStats{
		HTTP: addr, NodeID: nodeID, IsLeader: vals["walrus_raft_is_leader"] == 1,
		RSSBytes: vals["process_resident_memory_bytes"], DataDirBytes: vals["walrus_data_dir_bytes"],
		SnapshotBytes:          vals["walrus_raft_snapshot_bytes"],
		SnapshotPersistSeconds: vals["walrus_raft_snapshot_persist_seconds"],
		SnapshotRestoreSeconds: vals["walrus_raft_snapshot_restore_seconds"],
		Topics:                 vals["walrus_topics"],
	}
	walked := time.Unix(0, int64(vals["walrus_data_dir_walk_timestamp_seconds"]*1e9))
	return st, walked, nil
}

// parseMetrics reads the Prometheus text format and returns the value of
// the first series of each wanted name, and the node_id label seen on them.
func parseMetrics(r io.Reader, want []string) (map[string]float64, string, error) {
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w] = true
	}
	vals := map[string]float64{}
	nodeID := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		name := line[:end]
		if !wanted[name] {
			continue
		}
		if _, seen := vals[name]; seen {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			close := strings.LastIndexByte(rest, '}')
			if close < 0 {
				return nil, "", fmt.Errorf("bad series line %q", line)
			}
			if id, ok := labelValue(rest[1:close], "node_id"); ok {
				nodeID = id
			}
			rest = rest[close+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, "", fmt.Errorf("bad series line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, "", fmt.Errorf("bad value in %q: %w", line, err)
		}
		vals[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	return vals, nodeID, nil
}

// labelValue finds name="value" in a label list (values of ours never
// hold quotes or commas).
func labelValue(labels, name string) (string, bool) {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}
