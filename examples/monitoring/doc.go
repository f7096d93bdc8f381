// Package monitoring holds the Prometheus alert rules (alerts.yml and their
// promtool unit tests alerts_test.yml), the scrape config for the local
// 3-node cluster (prometheus.yml) and a Grafana dashboard (dashboard.json)
// for Walrus. It has no code: its tests run promtool over the files and
// check that every metric name they use exists in a node's /metrics output,
// so renaming a metric in node/metrics breaks the build instead of an
// on-call engineer's dashboard. See README.md.
package monitoring
