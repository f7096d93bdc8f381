package metrics

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// diskCacheTTL bounds how often the data directory is walked: a scrape
// every few seconds must not turn into a directory walk every few seconds
// on a node with many segment files. statfs is cheap and runs every scrape.
const diskCacheTTL = 15 * time.Second

var (
	descDataDirBytes = prometheus.NewDesc("walrus_data_dir_bytes", "Bytes used by files under this node's data directory (refreshed at most every 15s).", nil, nil)
	descDataDirWalk  = prometheus.NewDesc("walrus_data_dir_walk_timestamp_seconds", "Unix time of the data directory walk that walrus_data_dir_bytes reports.", nil, nil)
	descDiskFree     = prometheus.NewDesc("walrus_disk_free_bytes", "Bytes available to the node on the data directory's filesystem.", nil, nil)
	descDiskSize     = prometheus.NewDesc("walrus_disk_size_bytes", "Total size of the data directory's filesystem.", nil, nil)
	descDiskErrors   = prometheus.NewDesc("walrus_disk_stat_errors_total", "Failures to walk or statfs the data directory.", nil, nil)
)

// diskCollector reports the data directory's size and its filesystem's
// free/total bytes. Nothing is reported until SetDataDir is called.
type diskCollector struct {
	ttl time.Duration

	mu       sync.Mutex
	dir      string
	walkedAt time.Time
	dirBytes float64
	errors   float64
}

func newDiskCollector(ttl time.Duration) *diskCollector { return &diskCollector{ttl: ttl} }

// SetDataDir makes the disk gauges report dir (the node's data directory,
// e.g. <data_dir>/node_<id>) and its filesystem.
func (m *Metrics) SetDataDir(dir string) {
	m.disk.mu.Lock()
	m.disk.dir = dir
	m.disk.walkedAt = time.Time{}
	m.disk.mu.Unlock()
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDataDirBytes
	ch <- descDataDirWalk
	ch <- descDiskFree
	ch <- descDiskSize
	ch <- descDiskErrors
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	// The lock is held across the walk on purpose: concurrent scrapes wait
	// for one walk instead of each starting their own.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		return
	}
	now := time.Now()
	if c.walkedAt.IsZero() || now.Sub(c.walkedAt) >= c.ttl {
		n, err := dirBytes(c.dir)
		if err != nil {
			c.errors++
		}
		c.dirBytes = float64(n)
		c.walkedAt = now
	}
	ch <- prometheus.MustNewConstMetric(descDataDirBytes, prometheus.GaugeValue, c.dirBytes)
	ch <- prometheus.MustNewConstMetric(descDataDirWalk, prometheus.GaugeValue, float64(c.walkedAt.UnixNano())/1e9)
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir, &st); err != nil {
		c.errors++
	} else {
		bsize := float64(st.Bsize)
		// Bavail, not Bfree: blocks reserved for root are not usable by the
		// node, so "free" means what the node can still write.
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(st.Bavail)*bsize)
		ch <- prometheus.MustNewConstMetric(descDiskSize, prometheus.GaugeValue, float64(st.Blocks)*bsize)
	}
	ch <- prometheus.MustNewConstMetric(descDiskErrors, prometheus.CounterValue, c.errors)
}

// dirBytes sums the allocated size of regular files under dir. Files that
// vanish during the walk (segment deleted by retention) are skipped. The
// allocated size (blocks) is used rather than the length so preallocated,
// sparse mmap segment files count what they really occupy, like du.
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errorsIsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errorsIsNotExist(err) {
				return nil
			}
			return err
		}
		total += allocatedBytes(info)
		return nil
	})
	return total, err
}
