package acl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/node/acl"
)

func mustNew(t *testing.T, specs ...acl.Spec) *acl.Authorizer {
	t.Helper()
	a, err := acl.New(specs)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOffAllowsEverything(t *testing.T) {
	var nilA *acl.Authorizer
	for _, a := range []*acl.Authorizer{nilA, mustNew(t)} {
		if a.Enabled() || !a.Allowed("anyone", acl.Admin, acl.ClusterRes()) {
			t.Fatal("ACLs without rules must be off and allow everything")
		}
	}
}

func TestMatching(t *testing.T) {
	a := mustNew(t,
		acl.Spec{Principal: "admin", Resource: "*", Operations: []string{"read", "write", "create", "delete", "describe", "admin"}},
		acl.Spec{Principal: "reader", Resource: "logs", Operations: []string{"read"}},
		acl.Spec{Principal: "app", Resource: "logs-*", Operations: []string{"write", "create"}},
		acl.Spec{Principal: "app", Resource: "group:billing*", Operations: []string{"read"}},
		acl.Spec{Principal: "*", Resource: "cluster", Operations: []string{"describe"}},
		acl.Spec{Principal: "ops", Resource: "topic:cluster", Operations: []string{"read"}},
	)
	T, G, C := acl.TopicRes, acl.GroupRes, acl.ClusterRes()
	cases := []struct {
		who  string
		op   acl.Op
		res  acl.Resource
		want bool
	}{
		{"admin", acl.Admin, C, true},
		{"admin", acl.Write, T("x"), true},
		{"admin", acl.Read, G("g"), true},
		{"reader", acl.Read, T("logs"), true},
		{"reader", acl.Read, T("logs2"), false}, // exact name, not a prefix
		{"reader", acl.Write, T("logs"), false},
		{"reader", acl.Read, G("logs"), false}, // a topic rule is not a group rule
		{"app", acl.Write, T("logs-a"), true},
		{"app", acl.Write, T("logs-"), true},
		{"app", acl.Write, T("logs"), false},
		{"app", acl.Read, T("logs-a"), false},
		{"app", acl.Read, G("billing-eu"), true},
		{"app", acl.Read, G("other"), false},
		{"nobody", acl.Describe, C, true}, // "*" principal
		{"nobody", acl.Admin, C, false},
		{"nobody", acl.Read, T("logs"), false}, // default deny
		{"ops", acl.Read, T("cluster"), true},
		{"ops", acl.Read, C, false},
	}
	for _, c := range cases {
		if got := a.Allowed(c.who, c.op, c.res); got != c.want {
			t.Errorf("%s %s %s: got %v, want %v", c.who, c.op, c.res, got, c.want)
		}
	}
	err := a.Check("reader", acl.Write, T("logs"))
	var de *acl.DeniedError
	if !errors.As(err, &de) || err.Error() != "not authorized: reader may not write topic:logs" {
		t.Fatalf("denial %v", err)
	}
}

func TestNewNamesBadEntries(t *testing.T) {
	_, err := acl.New([]acl.Spec{
		{Principal: "ok", Resource: "*", Operations: []string{"read"}},
		{Principal: "", Resource: "*", Operations: []string{"read"}},
		{Principal: "bob", Resource: "*", Operations: []string{"reed"}},
		{Principal: "carol", Resource: "", Operations: []string{"read"}},
		{Principal: "dave", Resource: "a*b", Operations: []string{"read"}},
		{Principal: "erin", Resource: "x", Operations: nil},
		{Principal: "frank", Resource: "group:", Operations: []string{"read"}},
	})
	if err == nil {
		t.Fatal("bad rules accepted")
	}
	for _, want := range []string{"acls[1]: empty principal", `acls[2] (bob): unknown operation "reed"`, "acls[3] (carol): empty resource",
		"acls[4] (dave)", "acls[5] (erin): no operations", "acls[6] (frank)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "acls[0]") {
		t.Errorf("valid entry reported: %v", err)
	}
}
