package kafka_test

import (
	"crypto/tls"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/acl"
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

// TestTLSClientCertPrincipal: with tls.client_ca_file a verified client
// certificate authenticates a Kafka connection as its CommonName, as on
// the client port (no SASL needed; the ACLs apply to that principal), and
// SASL on such a connection switches to the SASL user.
func TestTLSClientCertPrincipal(t *testing.T) {
	dir, ca := t.TempDir(), testcerts.NewCA(t, "walrus client CA")
	sec := nodetest.Secure(t, map[string]string{"writer": "writer-pw"}, []acl.Spec{
		{Principal: "reader", Resource: "sk-*", Operations: []string{"read"}},
		{Principal: "writer", Resource: "sk-*", Operations: []string{"write"}},
	})
	as := func(cn string) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{ca.Issue(t, testcerts.LeafOptions{CommonName: cn}).TLSCertificate(t)}}
	}
	nodes := nodetest.StartClusterWith(t, 1, func(c *node.Config) {
		sec(c)
		srv := testcerts.WriteFiles(t, dir, "node1", ca, ca.Localhost(t, "node1"))
		c.TLS = tlsconf.Files{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA}
		c.KafkaPort = -1
	}, client.Options{TLS: as(nodetest.AdminUser)})
	addrs := []string{nodes[0].KafkaAddr()}
	admin := newClient(t, addrs, kgo.DialTLSConfig(as(nodetest.AdminUser)))
	createTopic(t, kadm.NewClient(admin), "sk-tls", 1, nil)
	reader := newClient(t, addrs, kgo.DialTLSConfig(as("reader")))
	topics, err := kadm.NewClient(reader).ListTopics(testCtx(t))
	if err != nil || !slices.Equal(topics.Names(), []string{"sk-tls"}) {
		t.Fatalf("reader by certificate lists %v %v", topics.Names(), err)
	}
	if err := reader.ProduceSync(testCtx(t), &kgo.Record{Topic: "sk-tls", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("reader by certificate produced: %v", err)
	}
	writer := newClient(t, addrs, kgo.DialTLSConfig(as("reader")), scramAs("writer", "writer-pw"))
	if err := writer.ProduceSync(testCtx(t), &kgo.Record{Topic: "sk-tls", Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("SASL writer over a reader certificate: %v", err)
	}
}
