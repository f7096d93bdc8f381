package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
	"github.com/walrus-go/walrus/node/kafka/ksasl"
)

// saslServer is fuzzServer with a user (alice) and ACLs on.
func saslServer(t testing.TB) *Server {
	t.Helper()
	h, err := auth.HashPassword("a password no fuzzer guesses 4Kq")
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.NewStore([]auth.User{{Name: "alice", PasswordHash: h}})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := acl.New([]acl.Spec{{Principal: "alice", Resource: "*", Operations: []string{"read"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := fuzzServer()
	s.deps.Users, s.deps.ACL = users, rules
	s.apis = s.table()
	return s
}

// FuzzSASLHandle: two requests on one unauthenticated connection of a
// listener with users. Nothing panics; every request other than
// ApiVersions and SASL is refused with ErrUnauthenticated (the connection
// closes) and never reaches a handler; nobody authenticates.
func FuzzSASLHandle(f *testing.F) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "SCRAM-SHA-256"
	hs0 := kmsg.NewPtrSASLHandshakeRequest()
	hs0.Mechanism = "PLAIN"
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("n,,n=alice,r=abcdef")
	plain := kmsg.NewPtrSASLAuthenticateRequest()
	plain.Version, plain.SASLAuthBytes = 1, []byte("\x00alice\x00guess")
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	f.Add(seedRequest(hs), seedRequest(au))
	f.Add(seedRequest(hs0), []byte("\x00alice\x00guess"))
	f.Add(seedRequest(au), seedRequest(hs))
	f.Add(seedRequest(av), seedRequest(md))
	f.Add(seedRequest(hs), seedRequest(plain))
	s := saslServer(f)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		cs := ksasl.NewConn(s.deps.Users, nil, nil)
		ctx := context.WithValue(context.Background(), connKey{}, cs)
		for _, body := range [][]byte{a, b} {
			if cs.Closing() {
				return
			}
			if cs.Raw() {
				if _, err := cs.RawToken(body); err != nil {
					return
				}
				continue
			}
			if len(body) < 8 {
				return
			}
			key := int16(binary.BigEndian.Uint16(body))
			out, err := s.handle(ctx, body, nil)
			if key != apiVersionsKey && key != ksasl.HandshakeKey && key != ksasl.AuthenticateKey && !errors.Is(err, ksasl.ErrUnauthenticated) {
				t.Fatalf("key %d before authentication: %v (%d bytes answered)", key, err, len(out))
			}
			if err != nil {
				return
			}
		}
		if p := cs.Principal(); p != "" {
			t.Fatalf("authenticated as %q", p)
		}
	})
}
