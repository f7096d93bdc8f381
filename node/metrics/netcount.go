package metrics

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// Port label values of walrus_network_bytes_total.
const (
	PortClient = "client" // the client protocol listener
	PortRaft   = "raft"   // Raft and internal RPC (one multiplexed port)
	PortKafka  = "kafka"  // the Kafka-protocol listener (when on)
)

// CountListener wraps ln so every accepted connection's bytes are counted
// in walrus_network_bytes_total{port, direction="rx"|"tx"}. port is
// PortClient or PortRaft. This gives the dashboard's "Network traffic:
// Raft + client port traffic rates" per node; the process collector's
// network counters cover the whole network namespace instead (on a host
// running three nodes, all three report the same numbers).
//
// Accepted connections are wrapped, so a type assertion to *net.TCPConn on
// them fails; code that needs TCP-specific methods should not use this.
func (m *Metrics) CountListener(ln net.Listener, port string) net.Listener {
	return &countingListener{Listener: ln, rx: m.NetworkBytes.WithLabelValues(port, "rx"), tx: m.NetworkBytes.WithLabelValues(port, "tx")}
}

// CountConn wraps a connection this node dialed (e.g. Raft replication to
// a follower) so its bytes are counted like CountListener's.
func (m *Metrics) CountConn(c net.Conn, port string) net.Conn {
	return &countingConn{Conn: c, rx: m.NetworkBytes.WithLabelValues(port, "rx"), tx: m.NetworkBytes.WithLabelValues(port, "tx")}
}

type countingListener struct {
	net.Listener
	rx, tx prometheus.Counter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, rx: l.rx, tx: l.tx}, nil
}

type countingConn struct {
	net.Conn
	rx, tx prometheus.Counter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.rx.Add(float64(n))
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.tx.Add(float64(n))
	}
	return n, err
}
