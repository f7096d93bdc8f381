package configs

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
}
