// Package tlsconf is the TLS of a node's listeners and peer connections:
// it loads certificates, keys and CA pools from PEM files, reloads them
// when the files change (Watch polls their modification times) or on
// demand (Reload, which the daemon calls on SIGHUP), and builds the
// *tls.Config of each side:
//
//   - Source.ServerConfig: a client-facing listener (the Walrus client
//     port, the HTTP port, and later the Kafka port). TLS 1.2 or newer; a
//     client certificate from the CA file is required when one is set.
//   - Source.PeerClientConfig: dialing a peer on the Raft/RPC port. The
//     peer's certificate must chain to the cluster CA, carry the server
//     auth usage and name the dialed host (DNS or IP SAN).
//   - Source.ServerConfig on the cluster source: accepting a peer. The
//     peer's certificate must chain to the cluster CA and carry the client
//     auth usage (crypto/tls checks both).
//   - NewListener: wraps a listener so each connection completes its
//     handshake, bounded by HandshakeTimeout, in the goroutine that first
//     reads or writes it, never in the accept loop.
//   - ClientConfig: a client's (walrus-cli's) configuration from files.
//
// A reload that fails (missing file, key that does not match, no PEM
// block, expired certificate) keeps the material in use and reports the
// error; the next change of the files, or the next Reload, tries again.
//
// Imports: the standard library only. Concurrency: a Source is safe for
// concurrent use; handshakes read its current material through an atomic
// pointer, reloads are serialised. Watch is run by the owner (the node) in
// a goroutine it stops by cancelling ctx.
package tlsconf
