package kafka_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/walrus-go/walrus/internal/testcerts"
	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/client"
	"github.com/walrus-go/walrus/node/nodetest"
	"github.com/walrus-go/walrus/node/tlsconf"
)

// kcatPath finds kcat: a local run without it skips, CI (CI=true) fails.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not installed (.ci/run installs Debian's kcat package)")
		}
		t.Skip("kcat not installed")
	}
	return p
}

func kcat(t *testing.T, bin string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kcat %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// TestKcat drives the listener with librdkafka's kcat: metadata, produce
// with keys and headers from a file, consume from the beginning.
func TestKcat(t *testing.T) {
	bin := kcatPath(t)
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, "kc", 1, nil)
	brokers := strings.Join(addrs, ",")

	var md struct {
		Brokers []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int   `json:"partition"`
				Leader    int   `json:"leader"`
				Replicas  []any `json:"replicas"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(kcat(t, bin, "", "-b", brokers, "-L", "-J", "-t", "kc")), &md); err != nil {
		t.Fatal(err)
	}
	r, _ := nodes[0].Metadata().Route("kc")
	var names []string
	for _, b := range md.Brokers {
		names = append(names, b.Name)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(addrs))
	if !slices.Equal(names, want) || len(md.Topics) != 1 || md.Topics[0].Topic != "kc" || len(md.Topics[0].Partitions) != 1 ||
		md.Topics[0].Partitions[0].Leader != int(r.Leader) || len(md.Topics[0].Partitions[0].Replicas) != 3 {
		t.Fatalf("kcat -L: %+v (brokers %v, leader %d)", md, want, r.Leader)
	}

	file := filepath.Join(t.TempDir(), "in.txt")
	in := "k1:hello\nk2:wörld\n:no key\nk4:\n"
	if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	kcat(t, bin, "", "-b", brokers, "-P", "-t", "kc", "-K", ":", "-H", "h1=v1", "-H", "h2=", "-l", file)
	got := kcat(t, bin, "", "-b", brokers, "-C", "-t", "kc", "-o", "beginning", "-e", "-q",
		"-f", "%p %o key=%k value=%s headers=%h\n")
	wantOut := "0 0 key=k1 value=hello headers=h1=v1,h2=\n" +
		"0 1 key=k2 value=wörld headers=h1=v1,h2=\n" +
		"0 2 key= value=no key headers=h1=v1,h2=\n" +
		"0 3 key=k4 value= headers=h1=v1,h2=\n"
	if got != wantOut {
		t.Fatalf("kcat -C printed:\n%s\nwant:\n%s", got, wantOut)
	}
}

// TestKcatGroup consumes with kcat's balanced consumer (-G): the first
// run reads everything from the beginning and commits on exit; the next
// run of the same group reads only what was produced since.
func TestKcatGroup(t *testing.T) {
	bin := kcatPath(t)
	nodes, addrs := kafkaCluster(t, nil)
	adm := kadm.NewClient(newClient(t, addrs))
	createTopic(t, adm, "kg", 1, nil)
	waitPartitions(t, nodes, "kg", 1)
	brokers := strings.Join(addrs, ",")
	consume := func() string {
		return kcat(t, bin, "", "-b", brokers, "-G", "kgroup", "-X", "auto.offset.reset=earliest", "-e", "-q",
			"-X", "auto.commit.interval.ms=100", "-f", "%p %o %k=%s\n", "kg")
	}
	kcat(t, bin, "a:1\nb:2\nc:3\n", "-b", brokers, "-P", "-t", "kg", "-K", ":")
	if got, want := consume(), "0 0 a=1\n0 1 b=2\n0 2 c=3\n"; got != want {
		t.Fatalf("first kcat -G run printed:\n%s\nwant:\n%s", got, want)
	}
	kcat(t, bin, "d:4\n", "-b", brokers, "-P", "-t", "kg", "-K", ":")
	if got, want := consume(), "0 3 d=4\n"; got != want {
		t.Fatalf("second kcat -G run printed:\n%s\nwant:\n%s", got, want)
	}
	offs, err := adm.FetchOffsets(testCtx(t), "kgroup")
	if o, ok := offs.Lookup("kg", 0); err != nil || !ok || o.At != 4 {
		t.Fatalf("committed offset of kgroup: %+v %v", o, err)
	}
}

// TestKcatSASL: librdkafka authenticates with SCRAM-SHA-256 and PLAIN
// (SASL_PLAINTEXT), produces, consumes and consumes in a group under the
// ACLs (committing); a wrong password fails.
func TestKcatSASL(t *testing.T) {
	bin := kcatPath(t)
	_, addrs := secureKafka(t)
	adm := kadm.NewClient(newClient(t, addrs, scramAs(nodetest.AdminUser, nodetest.AdminPassword)))
	createTopic(t, adm, "sk-kcat", 1, nil)
	as := func(mech, user, pw string) []string {
		return []string{"-b", addrs[0], "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=" + user, "-X", "sasl.password=" + pw}
	}
	kcat(t, bin, "a:1\nb:2\n", append(as("SCRAM-SHA-256", "writer", "writer-pw"), "-P", "-t", "sk-kcat", "-K", ":")...)
	kcat(t, bin, "c:3\n", append(as("PLAIN", "writer", "writer-pw"), "-P", "-t", "sk-kcat", "-K", ":")...)
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		got := kcat(t, bin, "", append(as(mech, "reader", "reader-pw"), "-C", "-t", "sk-kcat", "-o", "beginning", "-e", "-q", "-f", "%o %k=%s\n")...)
		if want := "0 a=1\n1 b=2\n2 c=3\n"; got != want {
			t.Fatalf("kcat -C with %s printed:\n%s\nwant:\n%s", mech, got, want)
		}
	}
	// A consumer group under the ACLs: reader has read on group:rg*.
	got := kcat(t, bin, "", append(as("SCRAM-SHA-256", "reader", "reader-pw"), "-G", "rg-kcat", "-X", "auto.offset.reset=earliest",
		"-e", "-q", "-f", "%o %k=%s\n", "sk-kcat")...)
	if want := "0 a=1\n1 b=2\n2 c=3\n"; got != want {
		t.Fatalf("kcat -G printed:\n%s\nwant:\n%s", got, want)
	}
	offs, err := adm.FetchOffsets(testCtx(t), "rg-kcat")
	if o, ok := offs.Lookup("sk-kcat", 0); err != nil || !ok || o.At != 3 {
		t.Fatalf("committed offset of rg-kcat: %+v %v", o, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(as("SCRAM-SHA-256", "reader", "wrong"), "-L", "-m", "5")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "uthentication") {
		t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
	}
}

// TestKcatSASLSSL: librdkafka over TLS (SASL_SSL, verifying the node's
// certificate) with PLAIN and SCRAM-SHA-256: produce and consume.
func TestKcatSASLSSL(t *testing.T) {
	bin := kcatPath(t)
	dir, ca := t.TempDir(), testcerts.NewCA(t, "walrus kafka CA")
	files := testcerts.WriteFiles(t, dir, "node1", ca, ca.Localhost(t, "node1"))
	sec := nodetest.Secure(t, map[string]string{"writer": "writer-pw"}, []acl.Spec{
		{Principal: "writer", Resource: "ssl-*", Operations: []string{"write", "create", "read"}},
	})
	nodes := nodetest.StartClusterWith(t, 1, func(c *node.Config) {
		sec(c)
		c.TLS = tlsconf.Files{CertFile: files.Cert, KeyFile: files.Key}
		c.KafkaPort = -1
	}, client.Options{TLS: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}})
	as := func(mech string) []string {
		return []string{"-b", nodes[0].KafkaAddr(), "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + files.CA,
			"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=writer", "-X", "sasl.password=writer-pw"}
	}
	kcat(t, bin, "a:1\n", append(as("PLAIN"), "-P", "-t", "ssl-kcat", "-K", ":")...)
	kcat(t, bin, "b:2\n", append(as("SCRAM-SHA-256"), "-P", "-t", "ssl-kcat", "-K", ":")...)
	got := kcat(t, bin, "", append(as("PLAIN"), "-C", "-t", "ssl-kcat", "-o", "beginning", "-e", "-q", "-f", "%o %k=%s\n")...)
	if want := "0 a=1\n1 b=2\n"; got != want {
		t.Fatalf("kcat -C over SASL_SSL printed:\n%s\nwant:\n%s", got, want)
	}
}
