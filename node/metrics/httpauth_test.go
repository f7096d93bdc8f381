package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHTTPBasicAuth(t *testing.T) {
	m := New(1)
	s := NewHTTPServer("127.0.0.1:0", m, nil, nil)
	check := func(u, p string) string {
		if u == "ops" && p == "pw" {
			return ""
		}
		return "bad_password"
	}
	get := func(path, user, pass string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Code
	}
	if get("/metrics", "", "") != 200 {
		t.Fatal("/metrics closed without RequireAuth")
	}
	s.RequireAuth(HTTPAuth{Metrics: true, Check: check})
	for _, c := range []struct {
		path, user, pass string
		want             int
	}{
		{"/metrics", "", "", 401},
		{"/metrics", "ops", "nope", 401},
		{"/metrics", "ops", "pw", 200},
		{"/healthz", "", "", 200}, // open unless Healthz
		{"/readyz", "", "", 200},
	} {
		if got := get(c.path, c.user, c.pass); got != c.want {
			t.Errorf("%s as %q: %d, want %d", c.path, c.user, got, c.want)
		}
	}
	s.RequireAuth(HTTPAuth{Metrics: true, Healthz: true, Check: check})
	if get("/healthz", "", "") != 401 || get("/healthz", "ops", "pw") != 200 {
		t.Fatal("/healthz not guarded with Healthz set")
	}
	if n := testutil.ToFloat64(m.AuthFailures.WithLabelValues("http", "missing")); n != 2 {
		t.Fatalf("missing failures %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.AuthFailures.WithLabelValues("http", "bad_password")); n != 1 {
		t.Fatalf("bad_password failures %v, want 1", n)
	}
}

// TestHTTPPprof: /debug/pprof/ is off unless enabled, and behind the same
// authentication as /metrics when it is.
func TestHTTPPprof(t *testing.T) {
	s := NewHTTPServer("127.0.0.1:0", New(1), nil, nil)
	get := func(path, user, pass string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, _ := get("/debug/pprof/goroutine?debug=1", "", ""); code != 404 {
		t.Fatalf("pprof answered %d before EnablePprof, want 404", code)
	}
	s.EnablePprof()
	if code, body := get("/debug/pprof/goroutine?debug=1", "", ""); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: %d %.80q", code, body)
	}
	s.RequireAuth(HTTPAuth{Metrics: true, Check: func(u, p string) string {
		if u == "ops" && p == "pw" {
			return ""
		}
		return "bad_password"
	}})
	if code, _ := get("/debug/pprof/heap", "", ""); code != 401 {
		t.Fatalf("pprof without credentials: %d, want 401", code)
	}
	if code, _ := get("/debug/pprof/heap", "ops", "pw"); code != 200 {
		t.Fatalf("pprof with credentials: %d, want 200", code)
	}
}
