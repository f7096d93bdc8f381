package testcluster

import (
	"context"
	"fmt"

	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/status"
)

// Metrics asks node id for METRICS over a fresh connection.
func (c *Cluster) Metrics(id uint64) (status.Metrics, error) {
	return query(c, id, "METRICS", (*client.Client).MetricsDoc)
}

// State asks node id for STATE <topic>.
func (c *Cluster) State(id uint64, topic string) (status.State, error) {
	return query(c, id, "STATE "+topic, func(cl *client.Client, ctx context.Context) (status.State, error) {
		return cl.StateDoc(ctx, topic)
	})
}

// SealedTotal is the sum of the sealed segments' entry counts, computed
// from sealed_segments (a check on the node's own sealed_offset).
func SealedTotal(s status.State) uint64 {
	var n uint64
	for _, c := range s.SealedSegments {
		n += c
	}
	return n
}

// query dials node id, makes one call and closes the connection; what
// names the call in errors.
func query[T any](c *Cluster, id uint64, what string, call func(*client.Client, context.Context) (T, error)) (T, error) {
	var zero T
	ctx, cancel := ctxTimeout()
	defer cancel()
	cl, err := client.Dial(ctx, c.Node(id).ClientAddr, client.Options{Timeout: DefaultIOTimeout})
	if err != nil {
		return zero, fmt.Errorf("node %d %s: %w", id, what, err)
	}
	defer cl.Close()
	v, err := call(cl, ctx)
	if err != nil {
		return zero, fmt.Errorf("node %d %s: %w", id, what, err)
	}
	return v, nil
}
