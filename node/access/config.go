package access

import (
	"errors"
	"fmt"
	"net"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

// Config is a node's client security (besides TLS, which wraps the
// listeners). The zero Config is open: no users, no ACLs.
type Config struct {
	// Users: authentication is on when it lists any user.
	Users *auth.Store
	// ACL: default deny once it has any rule.
	ACL *acl.Authorizer
	// TLS reports that the client and HTTP listeners use TLS (node.Config
	// also counts TLS.CertFile).
	TLS bool
	// Insecure lets a non-loopback listener start without TLS and users.
	Insecure bool
	// MetricsAuth and HealthzAuth make /metrics and /healthz require HTTP
	// basic authentication with a configured user.
	MetricsAuth, HealthzAuth bool
}

// ErrExposed is wrapped by CheckExposure's refusal.
var ErrExposed = errors.New("refusing to expose an unprotected listener")

// CheckExposure refuses a listener bound to a non-loopback host (name is
// the config key, for the message) when neither TLS nor authentication
// is on, unless Insecure is set.
func (c Config) CheckExposure(name, host string) error {
	if c.Insecure || c.TLS || c.Users.Enabled() || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%w: %s is %q, which is not a loopback address, and neither TLS (tls.cert_file) nor authentication (users) is configured: "+
		"configure users (see `walrus-cli user hash`) or TLS, bind to 127.0.0.1, or set security.insecure: true to accept the risk", ErrExposed, name, host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPCheck is the basic-auth check of the HTTP endpoints against Users:
// "" on success, else the failure reason.
func (c Config) HTTPCheck(user, password string) string {
	err := c.Users.Authenticate(user, password)
	if err == nil {
		return ""
	}
	var f *auth.Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	return auth.ReasonBadPassword
}
