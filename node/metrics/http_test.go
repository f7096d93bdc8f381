package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPServer(t *testing.T) {
	m := New(3)
	m.SetRaftSource(leaderStats)
	var ready atomic.Bool
	srv := NewHTTPServer("127.0.0.1:0", m, func() (bool, string) {
		if ready.Load() {
			return true, ""
		}
		return false, "no raft leader"
	}, nil)
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.Start(t.Context()); !errors.Is(err, ErrServerStarted) {
		t.Fatalf("second Start: %v", err)
	}
	base := "http://" + srv.Addr()

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `walrus_raft_term{node_id="3"} 5`) || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, "process_cpu_seconds_total") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	code, body = get(t, base+"/readyz")
	var rb readyBody
	if err := json.Unmarshal([]byte(body), &rb); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || rb.Ready || rb.Reason != "no raft leader" {
		t.Fatalf("/readyz not ready: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || strings.TrimSpace(body) != `{"ready":true}` {
		t.Fatalf("/readyz ready: %d %q", code, body)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answering after Close")
	}
}

func TestHTTPServerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv := NewHTTPServer("127.0.0.1:0", New(1), nil, nil)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "http://"+srv.Addr()+"/readyz"); code != http.StatusOK {
		t.Fatalf("nil ready func: %d %q", code, body)
	}
	cancel()
	// Close waits for the goroutines the cancelled ctx is shutting down.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Fatal("server still answering after ctx cancel")
	}
}

func TestHTTPServerBadAddress(t *testing.T) {
	srv := NewHTTPServer("127.0.0.1:notaport", New(1), nil, nil)
	if err := srv.Start(t.Context()); err == nil {
		_ = srv.Close()
		t.Fatal("Start on a bad address succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkScrape measures one /metrics handler call for a leader with 10
// topics (the cost a Prometheus scrape adds to a node).
func BenchmarkScrape(b *testing.B) {
	m := New(1)
	m.SetRaftSource(leaderStats)
	topics := make([]TopicStats, 10)
	for i := range topics {
		topics[i] = TopicStats{Name: "t" + string(rune('a'+i)), CurrentSegment: 3, LeaderNode: 1, SealedLedHere: 1}
		m.ObserveAppend(topics[i].Name, 1, 100)
	}
	m.SetClusterSource(func() ClusterStats { return ClusterStats{Topics: topics} })
	m.SetDataDir(b.TempDir())
	h := NewHTTPServer("127.0.0.1:0", m, nil, nil).Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
