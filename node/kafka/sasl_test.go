package kafka_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/nodetest"
)

// secureKafka starts a one-node cluster with users (nodetest.Secure adds
// the admin) and ACLs, and its Kafka listener on.
func secureKafka(t *testing.T) (*nodetest.Node, []string) {
	t.Helper()
	sec := nodetest.Secure(t, map[string]string{"writer": "writer-pw", "reader": "reader-pw", "member": "member-pw"}, []acl.Spec{
		{Principal: "writer", Resource: "sk-*", Operations: []string{"write", "create"}},
		{Principal: "reader", Resource: "sk-*", Operations: []string{"read"}},
		{Principal: "reader", Resource: "group:rg*", Operations: []string{"read"}},
		{Principal: "member", Resource: "group:mg", Operations: []string{"read"}},
		{Principal: "member", Resource: "sk-other", Operations: []string{"read"}},
	})
	nodes := nodetest.StartCluster(t, 1, func(c *node.Config) {
		sec(c)
		c.KafkaPort = -1
	})
	return nodes[0], []string{nodes[0].KafkaAddr()}
}

func scramAs(user, pw string) kgo.Opt {
	return kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha256Mechanism())
}

func plainAs(user, pw string) kgo.Opt {
	return kgo.SASL(plain.Auth{User: user, Pass: pw}.AsMechanism())
}

// failFast makes a client give up at once (an authentication failure is
// not retried by kgo anyway).
func failFast() []kgo.Opt {
	return []kgo.Opt{kgo.RequestRetries(0), kgo.RetryTimeout(time.Second), kgo.DialTimeout(5 * time.Second)}
}

// TestSASLProduceConsume: SCRAM-SHA-256 and PLAIN clients create,
// produce, consume in a group and commit, each as far as its ACLs allow.
func TestSASLProduceConsume(t *testing.T) {
	_, addrs := secureKafka(t)
	admin := newClient(t, addrs, scramAs(nodetest.AdminUser, nodetest.AdminPassword))
	for _, mech := range []struct {
		name string
		w, r kgo.Opt
	}{
		{"scram", scramAs("writer", "writer-pw"), scramAs("reader", "reader-pw")},
		{"plain", plainAs("writer", "writer-pw"), plainAs("reader", "reader-pw")},
	} {
		t.Run(mech.name, func(t *testing.T) {
			topic := "sk-" + mech.name
			createTopic(t, kadm.NewClient(admin), topic, 2, nil)
			want := sampleRecords(topic, 6)
			for _, r := range want {
				r.Partition = 0
			}
			produceAll(t, newClient(t, addrs, mech.w, kgo.RecordPartitioner(kgo.ManualPartitioner())), want)
			group := "rg-" + mech.name
			c := newClient(t, addrs, mech.r, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
			var got []*kgo.Record
			ctx := testCtx(t)
			for len(got) < len(want) && ctx.Err() == nil {
				f := c.PollFetches(ctx)
				if errs := f.Errors(); len(errs) > 0 && ctx.Err() == nil {
					t.Fatalf("poll: %v", errs)
				}
				got = append(got, f.Records()...)
			}
			if len(got) != len(want) {
				t.Fatalf("consumed %d records, want %d", len(got), len(want))
			}
			for i := range want {
				sameRecord(t, got[i], want[i])
			}
			if err := c.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		})
	}
}

// TestSASLRefusals: a wrong password or an unknown user fails with
// SASL_AUTHENTICATION_FAILED (both mechanisms), and a client without SASL
// gets nowhere.
func TestSASLRefusals(t *testing.T) {
	n, addrs := secureKafka(t)
	for name, opt := range map[string]kgo.Opt{
		"scram wrong password": scramAs("writer", "nope"),
		"scram unknown user":   scramAs("mallory", "writer-pw"),
		"plain wrong password": plainAs("writer", "nope"),
		"plain unknown user":   plainAs("mallory", "x"),
	} {
		cl := newClient(t, addrs, append(failFast(), opt)...)
		err := cl.Ping(testCtx(t))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s: ping error %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}
	failures := func(reason string) float64 {
		return testutil.ToFloat64(n.Metrics().AuthFailures.WithLabelValues("kafka", reason))
	}
	if failures(auth.ReasonBadPassword) < 2 || failures(auth.ReasonUnknownUser) < 2 {
		t.Fatalf("walrus_auth_failures_total{listener=kafka}: bad_password %v, unknown_user %v", failures(auth.ReasonBadPassword), failures(auth.ReasonUnknownUser))
	}
	cl := newClient(t, addrs, failFast()...)
	if _, err := kadm.NewClient(cl).ListTopics(testCtx(t)); err == nil {
		t.Fatal("a client without SASL listed topics")
	}
	if failures(auth.ReasonMissing) < 1 {
		t.Fatal("a request before SASL was not counted as missing")
	}
	// SCRAM-SHA-512 authenticates against the second credential of the
	// password_hash (walrus-cli user hash writes both), with a wrong
	// password it fails like SHA-256.
	cl = newClient(t, addrs, kgo.SASL(scram.Auth{User: "writer", Pass: "writer-pw"}.AsSha512Mechanism()))
	if _, err := kadm.NewClient(cl).ListTopics(testCtx(t)); err != nil {
		t.Fatalf("SCRAM-SHA-512: %v", err)
	}
	cl = newClient(t, addrs, append(failFast(), kgo.SASL(scram.Auth{User: "writer", Pass: "nope"}.AsSha512Mechanism()))...)
	if err := cl.Ping(testCtx(t)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("SCRAM-SHA-512 with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

// TestSASLRaw: the protocol level. ApiVersions is answered before
// authentication and advertises the SASL APIs; any other request closes
// the connection; the SASL state machine refuses messages out of order,
// unknown mechanisms, garbage and oversized tokens, each with its code and
// a closed connection.
func TestSASLRaw(t *testing.T) {
	_, addrs := secureKafka(t)
	addr := addrs[0]

	c := dialRaw(t, addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	avr := kmsg.NewPtrApiVersionsResponse()
	roundTrip(t, c, av, avr)
	keys := map[int16][2]int16{}
	for _, k := range avr.ApiKeys {
		keys[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if keys[17] != [2]int16{0, 1} || keys[36] != [2]int16{0, 2} {
		t.Fatalf("SASL APIs advertised as %v / %v, want SaslHandshake 0-1, SaslAuthenticate 0-2", keys[17], keys[36])
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	if _, err := c.Write(request(md, 1)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, "metadata before SASL")

	handshake := func(t *testing.T, c net.Conn, mech string) *kmsg.SASLHandshakeResponse {
		t.Helper()
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version, req.Mechanism = 1, mech
		resp := kmsg.NewPtrSASLHandshakeResponse()
		roundTrip(t, c, req, resp)
		return resp
	}
	authenticate := func(t *testing.T, c net.Conn, b []byte) *kmsg.SASLAuthenticateResponse {
		t.Helper()
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 2, b
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		roundTrip(t, c, req, resp)
		return resp
	}
	// scramRaw runs a SCRAM-SHA-256 exchange with xdg-go's client and
	// returns the last answer.
	scramRaw := func(t *testing.T, c net.Conn, user, pw, authzID string) *kmsg.SASLAuthenticateResponse {
		t.Helper()
		if r := handshake(t, c, "SCRAM-SHA-256"); r.ErrorCode != 0 {
			t.Fatalf("handshake code %d", r.ErrorCode)
		}
		cl, err := xscram.SHA256.NewClient(user, pw, authzID)
		if err != nil {
			t.Fatal(err)
		}
		conv := cl.NewConversation()
		msg, err := conv.Step("")
		var last *kmsg.SASLAuthenticateResponse
		for !conv.Done() {
			if err != nil {
				t.Fatalf("client step: %v", err)
			}
			if last = authenticate(t, c, []byte(msg)); last.ErrorCode != 0 {
				return last
			}
			msg, err = conv.Step(string(last.SASLAuthBytes))
		}
		if err != nil || !conv.Valid() {
			t.Fatalf("server signature not verified: %v", err)
		}
		return last
	}
	t.Run("scram success", func(t *testing.T) {
		c := dialRaw(t, addr)
		if r := scramRaw(t, c, "reader", "reader-pw", ""); r.ErrorCode != 0 {
			t.Fatalf("code %d", r.ErrorCode)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 9
		roundTrip(t, c, md, kmsg.NewPtrMetadataResponse())
	})
	t.Run("scram authzid other than the user", func(t *testing.T) {
		c := dialRaw(t, addr)
		if r := scramRaw(t, c, "reader", "reader-pw", "admin"); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("code %d, want SASL_AUTHENTICATION_FAILED", r.ErrorCode)
		}
		expectClosed(t, c, "authzid")
	})

	t.Run("authenticate before handshake", func(t *testing.T) {
		c := dialRaw(t, addr)
		if r := authenticate(t, c, []byte("\x00writer\x00writer-pw")); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("code %d, want ILLEGAL_SASL_STATE", r.ErrorCode)
		}
		expectClosed(t, c, "authenticate before handshake")
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c := dialRaw(t, addr)
		r := handshake(t, c, "GSSAPI")
		if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Equal(r.SupportedMechanisms, []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}) {
			t.Fatalf("answer %+v", r)
		}
		expectClosed(t, c, "unknown mechanism")
	})
	// SaslHandshake v0 (librdkafka needs it advertised): then the tokens
	// travel raw, framed by a size only, and so do the answers.
	rawToken := func(t *testing.T, c net.Conn, tok []byte) []byte {
		t.Helper()
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatalf("raw answer: %v", err)
		}
		b := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	handshake0 := func(t *testing.T, c net.Conn, mech string) {
		t.Helper()
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Mechanism = mech
		resp := kmsg.NewPtrSASLHandshakeResponse()
		roundTrip(t, c, req, resp)
		if resp.ErrorCode != 0 {
			t.Fatalf("v0 handshake code %d", resp.ErrorCode)
		}
	}
	metadataOK := func(t *testing.T, c net.Conn) {
		t.Helper()
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 9
		mr := kmsg.NewPtrMetadataResponse()
		roundTrip(t, c, md, mr)
		if len(mr.Brokers) != 1 {
			t.Fatalf("metadata: %+v", mr)
		}
	}
	t.Run("handshake v0 plain raw", func(t *testing.T) {
		c := dialRaw(t, addr)
		handshake0(t, c, "PLAIN")
		if b := rawToken(t, c, []byte("\x00reader\x00reader-pw")); len(b) != 0 {
			t.Fatalf("raw PLAIN answer %q", b)
		}
		metadataOK(t, c)
	})
	t.Run("handshake v0 scram raw", func(t *testing.T) {
		c := dialRaw(t, addr)
		handshake0(t, c, "SCRAM-SHA-256")
		cl, _ := xscram.SHA256.NewClient("reader", "reader-pw", "")
		conv := cl.NewConversation()
		msg, err := conv.Step("")
		for !conv.Done() && err == nil {
			msg, err = conv.Step(string(rawToken(t, c, []byte(msg))))
		}
		if err != nil || !conv.Valid() {
			t.Fatalf("raw SCRAM: %v", err)
		}
		metadataOK(t, c)
	})
	t.Run("handshake v0 bad raw token", func(t *testing.T) {
		c := dialRaw(t, addr)
		handshake0(t, c, "PLAIN")
		if _, err := c.Write([]byte{0, 0, 0, 3, 'x', 0, 'y'}); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "bad raw token")
	})
	for name, b := range map[string][]byte{
		"scram garbage":     []byte("\xff\x00garbage,,=="),
		"scram empty":       {},
		"scram final first": []byte("c=biws,r=abc,p=dGVzdA=="),
		"scram oversized":   make([]byte, 5000),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if r := handshake(t, c, "SCRAM-SHA-256"); r.ErrorCode != 0 {
				t.Fatalf("handshake code %d", r.ErrorCode)
			}
			r := authenticate(t, c, b)
			if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil {
				t.Fatalf("code %d (%v), want SASL_AUTHENTICATION_FAILED with a message", r.ErrorCode, r.ErrorMessage)
			}
			expectClosed(t, c, name)
		})
	}
	for name, b := range map[string][]byte{
		"plain no separators": []byte("writerwriter-pw"),
		"plain empty user":    []byte("\x00\x00writer-pw"),
		"plain authzid other": []byte("admin\x00writer\x00writer-pw"),
		"plain four parts":    []byte("\x00writer\x00writer-pw\x00x"),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			handshake(t, c, "PLAIN")
			if r := authenticate(t, c, b); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("code %d, want SASL_AUTHENTICATION_FAILED", r.ErrorCode)
			}
			expectClosed(t, c, name)
		})
	}
	t.Run("oversized request before authentication", func(t *testing.T) {
		c := dialRaw(t, addr)
		// A 20 KiB SaslAuthenticate: the size prefix alone closes it.
		if _, err := c.Write([]byte{0, 0, 0x50, 0, 0, 36, 0, 2}); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "oversized")
	})
	t.Run("plain success then second handshake", func(t *testing.T) {
		c := dialRaw(t, addr)
		handshake(t, c, "PLAIN")
		if r := authenticate(t, c, []byte("\x00reader\x00reader-pw")); r.ErrorCode != 0 || r.SessionLifetimeMillis != 0 {
			t.Fatalf("answer %+v", r)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 9
		mr := kmsg.NewPtrMetadataResponse()
		roundTrip(t, c, md, mr)
		if len(mr.Brokers) != 1 {
			t.Fatalf("metadata after PLAIN: %+v", mr)
		}
		if r := handshake(t, c, "PLAIN"); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("second handshake code %d", r.ErrorCode)
		}
		expectClosed(t, c, "second handshake")
	})
	apiVersionsOK(t, addr)
}
