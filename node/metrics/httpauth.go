package metrics

import (
	"net/http"
	"sync/atomic"
)

// httpAuth is the HTTP basic authentication of /metrics and /healthz.
type httpAuth struct {
	cfg atomic.Pointer[HTTPAuth]
}

// HTTPAuth makes /metrics (Metrics) and /healthz (Healthz) require HTTP
// basic authentication checked by Check (the node's users). /readyz stays
// open. Check returns "" on success or the failure reason for
// walrus_auth_failures_total{listener="http"}.
type HTTPAuth struct {
	Metrics, Healthz bool
	Check            func(user, password string) (reason string)
}

// RequireAuth sets the basic authentication of the HTTP endpoints; call
// it before Start.
func (s *HTTPServer) RequireAuth(a HTTPAuth) { s.auth.cfg.Store(&a) }

// guard wraps h with the basic authentication of /metrics (isMetrics) or
// /healthz, when configured.
func (s *HTTPServer) guard(isMetrics bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := s.auth.cfg.Load()
		if a == nil || a.Check == nil || (isMetrics && !a.Metrics) || (!isMetrics && !a.Healthz) {
			h.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		reason := "missing"
		if ok {
			reason = a.Check(user, pass)
		}
		if reason != "" {
			if s.m != nil {
				s.m.AuthFailures.WithLabelValues("http", reason).Inc()
			}
			s.logger.Warn("HTTP authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path, "user", user, "reason", reason)
			w.Header().Set("WWW-Authenticate", `Basic realm="walrus"`)
			http.Error(w, "authentication required: use HTTP basic auth with a configured user", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
