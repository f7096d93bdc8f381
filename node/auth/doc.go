// Package auth authenticates clients: the stored SCRAM-SHA-256 credentials
// of the configured users (parsing, making and verifying them), the user
// store the Walrus protocol's AUTH command checks (and that a Kafka
// SASL/SCRAM listener can use through Store.Lookup), and the principal a
// connection carries in its context. It has no network code.
package auth
