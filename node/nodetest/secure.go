package nodetest

import (
	"sort"
	"testing"

	"github.com/walrus-go/walrus/node"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

// The user Secure always adds, with every operation on everything; Dial
// authenticates as it on a node with users.
const (
	AdminUser     = "admin"
	AdminPassword = "admin-pw"
)

// Secure returns a StartCluster tweak that turns authentication on with
// AdminUser plus users (name → password), and ACLs on with rules plus
// one granting AdminUser everything.
func Secure(t testing.TB, users map[string]string, rules []acl.Spec) func(*node.Config) {
	t.Helper()
	names := []string{AdminUser}
	pw := map[string]string{AdminUser: AdminPassword}
	for n, p := range users {
		names = append(names, n)
		pw[n] = p
	}
	sort.Strings(names)
	var list []auth.User
	for _, n := range names {
		h, err := auth.HashPassword(pw[n])
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, auth.User{Name: n, PasswordHash: h})
	}
	store, err := auth.NewStore(list)
	if err != nil {
		t.Fatal(err)
	}
	all := acl.Spec{Principal: AdminUser, Resource: "*", Operations: []string{"read", "write", "create", "delete", "describe", "admin"}}
	authz, err := acl.New(append([]acl.Spec{all}, rules...))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *node.Config) {
		c.Security.Users = store
		c.Security.ACL = authz
	}
}
