package kbench

import (
	"context"
	"testing"
	"time"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/bench"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/nodetest"
)

func TestProduceConsumeVerified(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, func(c *node.Config) { c.KafkaPort = -1 })
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.KafkaAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := bench.Config{Addrs: addrs, Clients: 2, Messages: 3000, Size: 100, Topics: 3, TopicPrefix: "kb", Pipeline: 256}
	r, err := Produce(ctx, cfg, Options{Codec: "lz4"})
	if err != nil || !r.OK() || r.Messages != 3000 {
		t.Fatalf("produce: %+v %v", r, err)
	}
	cfg.Messages, cfg.DrainWait = 0, 2*time.Second
	c, err := Consume(ctx, cfg)
	if err != nil || !c.OK() || c.Verify.Verified != 3000 || c.Verify.Duplicates != 0 {
		t.Fatalf("consume: %+v %+v %v", c, c.Verify, err)
	}
}
