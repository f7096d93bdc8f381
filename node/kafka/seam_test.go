package kafka

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/walrus-go/walrus/node/kafka/kauthz"
)

// stubGroups answers FindCoordinator with node 7; it stands for the
// consumer-group coordinator the composition root plugs in.
type stubGroups struct{ Groups }

func (stubGroups) FindCoordinator(_ context.Context, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	resp.NodeID = 7
	return resp, nil
}

func advertised(s *Server) []int16 {
	var keys []int16
	for _, k := range s.apiVersions(3).ApiKeys {
		keys = append(keys, k.ApiKey)
	}
	return keys
}

func TestGroupsSeam(t *testing.T) {
	s := fuzzServer()
	want := []int16{0, 1, 2, 3, 18, 19, 20, 22, 32, 37}
	if got := advertised(s); !slices.Equal(got, want) {
		t.Fatalf("without Groups: advertised %v, want exactly %v", got, want)
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	if _, err := s.handle(context.Background(), seedRequest(req), nil); err == nil {
		t.Fatal("FindCoordinator served without Groups")
	}
	g := fuzzServer()
	g.deps.Groups = stubGroups{}
	g.apis = g.table()
	for k := range GroupVersions {
		if !slices.Contains(advertised(g), k) {
			t.Fatalf("with Groups: key %d not advertised", k)
		}
	}
	out, err := g.handle(context.Background(), seedRequest(req), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.Version = 3
	if err := resp.ReadFrom(out[4+4+1:]); err != nil || resp.NodeID != 7 || int(binary.BigEndian.Uint32(out)) != len(out)-4 {
		t.Fatalf("FindCoordinator answer %+v %v", resp, err)
	}
}

// Transactions are not served: their APIs are not advertised, and a
// client that sends them anyway gets UNSUPPORTED_VERSION, not a closed
// connection.
func TestTransactionsUnsupported(t *testing.T) {
	s := fuzzServer()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = 3
	out, err := s.handle(context.Background(), seedRequest(req), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrEndTxnResponse()
	resp.Version = 3
	if err := resp.ReadFrom(out[4+4+1:]); err != nil || resp.ErrorCode != errUnsupportedVersion {
		t.Fatalf("EndTxn answer %+v %v", resp, err)
	}
	if slices.Contains(advertised(s), 26) {
		t.Fatal("EndTxn advertised")
	}
}

// TestEveryAPIHasACLDecision: every API served (with Groups and users
// on) is mapped by kauthz or listed as needing no permission, so a new
// API cannot slip past the ACLs unnoticed.
func TestEveryAPIHasACLDecision(t *testing.T) {
	s := saslServer(t)
	s.deps.Groups = stubGroups{}
	s.apis = s.table()
	for key := range s.apis {
		if !kauthz.Covers(key) {
			t.Errorf("API key %d (%s) is served but has no ACL decision in kauthz", key, kmsg.NameForKey(key))
		}
	}
}
