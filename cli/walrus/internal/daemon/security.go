package daemon

import (
	"fmt"

	"github.com/walrus-go/walrus/configs"
	"github.com/walrus-go/walrus/node/access"
	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

// SecurityConfig builds the node's client security from the users, acls,
// tls and security keys (configs.Validate has checked them already; the
// errors here name the entry again for direct callers).
func SecurityConfig(c configs.Config) (access.Config, error) {
	users, err := auth.NewStore(c.AuthUsers())
	if err != nil {
		return access.Config{}, fmt.Errorf("%w: users: %w", configs.ErrInvalid, err)
	}
	rules, err := acl.New(c.ACLSpecs())
	if err != nil {
		return access.Config{}, fmt.Errorf("%w: acls: %w", configs.ErrInvalid, err)
	}
	return access.Config{
		Users:       users,
		ACL:         rules,
		TLS:         c.TLS.CertFile != "",
		Insecure:    c.Security.Insecure,
		MetricsAuth: c.Security.MetricsAuth,
		HealthzAuth: c.Security.HealthzAuth,
	}, nil
}
