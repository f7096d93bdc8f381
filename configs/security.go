package configs

import (
	"fmt"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

// TLSConfig is the certificate of the client-facing listeners (the Walrus
// client port, the Kafka port, the HTTP port). Empty CertFile: plaintext.
type TLSConfig struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ClientCAFile, when set, makes those listeners require and verify a
	// client certificate signed by this CA.
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// ClusterTLSConfig is the mutual TLS of the Raft/RPC port: every peer
// presents a certificate from CAFile. Empty CertFile: plaintext peers.
type ClusterTLSConfig struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	CAFile   string `mapstructure:"ca_file"`
}

// UserConfig is one client identity; PasswordHash comes from
// `walrus-cli user hash` (never a plaintext password).
type UserConfig struct {
	Name         string `mapstructure:"name"`
	PasswordHash string `mapstructure:"password_hash"`
}

// ACLConfig grants Principal (a user, a certificate subject or "*") the
// Operations on Resource ("*", a topic name or prefix*, group:<name>,
// cluster).
type ACLConfig struct {
	Principal  string   `mapstructure:"principal"`
	Resource   string   `mapstructure:"resource"`
	Operations []string `mapstructure:"operations"`
}

// SecurityConfig holds the switches that are not per listener.
type SecurityConfig struct {
	// Insecure lets a listener bound to a non-loopback address start
	// without TLS and authentication.
	Insecure bool `mapstructure:"insecure"`
	// MetricsAuth makes GET /metrics require HTTP basic authentication
	// with one of the users.
	MetricsAuth bool `mapstructure:"metrics_auth"`
	// HealthzAuth makes GET /healthz require it too (off by default, so
	// load balancers can probe it).
	HealthzAuth bool `mapstructure:"healthz_auth"`
}

// AuthUsers returns the users key as node/auth users.
func (c Config) AuthUsers() []auth.User {
	out := make([]auth.User, len(c.Users))
	for i, u := range c.Users {
		out[i] = auth.User{Name: u.Name, PasswordHash: u.PasswordHash}
	}
	return out
}

// ACLSpecs returns the acls key as node/acl rules.
func (c Config) ACLSpecs() []acl.Spec {
	out := make([]acl.Spec, len(c.ACLs))
	for i, a := range c.ACLs {
		out[i] = acl.Spec{Principal: a.Principal, Resource: a.Resource, Operations: append([]string(nil), a.Operations...)}
	}
	return out
}

// validateSecurity checks the users and acls keys as the node will read
// them (errors name the entry: users[i], acls[i]) and that
// security.metrics_auth/healthz_auth have users to check against.
func (c Config) validateSecurity() []error {
	var errs []error
	store, err := auth.NewStore(c.AuthUsers())
	if err != nil {
		errs = append(errs, &KeyError{Key: "users", Value: "(hidden)", Problem: err.Error()})
	}
	if _, err := acl.New(c.ACLSpecs()); err != nil {
		errs = append(errs, &KeyError{Key: "acls", Value: "(see file)", Problem: err.Error()})
	}
	if err == nil && !store.Enabled() && (c.Security.MetricsAuth || c.Security.HealthzAuth) {
		errs = append(errs, &KeyError{Key: "security.metrics_auth", Value: "true", Problem: "needs users to check HTTP basic auth against: add users or set it false"})
	}
	return errs
}

// validateTLS checks that the TLS keys come in complete sets; whether the
// files exist and hold usable PEM is checked when the node loads them
// (the error names the file).
func (c Config) validateTLS(bad func(key string, val any, format string, args ...any)) {
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.key_file", t.KeyFile, "tls.cert_file and tls.key_file must be set together (tls.cert_file = %q)", t.CertFile)
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		bad("tls.client_ca_file", t.ClientCAFile, "needs tls.cert_file and tls.key_file: client certificates are only checked on a TLS listener")
	}
	ct := c.ClusterTLS
	if set := btoi(ct.CertFile != "") + btoi(ct.KeyFile != "") + btoi(ct.CAFile != ""); set != 0 && set != 3 {
		bad("cluster_tls", fmt.Sprintf("cert_file=%q key_file=%q ca_file=%q", ct.CertFile, ct.KeyFile, ct.CAFile),
			"set all three (this node's certificate, its key and the cluster CA) or none: peers authenticate each other with them")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
