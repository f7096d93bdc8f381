package kafka_test

import (
	"crypto/tls"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// TestTLS: with tls.cert_file set the Kafka port speaks TLS only, with the
// client port's certificate.
func TestTLS(t *testing.T) {
	dir, ca := t.TempDir(), testcerts.NewCA(t, "walrus client CA")
	clientTLS := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	nodes := nodetest.StartClusterWith(t, 3, func(c *node.Config) {
		name := "node" + strconv.FormatUint(c.NodeID, 10)
		srv := testcerts.WriteFiles(t, dir, name, ca, ca.Localhost(t, name))
		c.TLS = tlsconf.Files{CertFile: srv.Cert, KeyFile: srv.Key}
		c.KafkaPort = -1
	}, client.Options{TLS: clientTLS})
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.KafkaAddr())
	}
	cl := newClient(t, addrs, kgo.DialTLSConfig(clientTLS))
	createTopic(t, kadm.NewClient(cl), "tls", 1, nil)
	want := sampleRecords("tls", 8)
	produceAll(t, cl, want)
	c := newClient(t, addrs, kgo.DialTLSConfig(clientTLS), kgo.ConsumeTopics("tls"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	ctx := testCtx(t)
	for len(got) < len(want) && ctx.Err() == nil {
		got = append(got, c.PollFetches(ctx).Records()...)
	}
	for i := range want {
		sameRecord(t, got[i], want[i])
	}
	// A plaintext Kafka client gets nowhere.
	plain := newClient(t, addrs, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second), kgo.DialTimeout(2*time.Second))
	if err := plain.Ping(testCtx(t)); err == nil {
		t.Fatal("plaintext client reached a TLS Kafka port")
	}
}
