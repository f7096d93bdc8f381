// Package mux shares one TCP listener between several protocols. Every
// connection starts with one tag byte naming its protocol (TagRaft for the
// hashicorp/raft NetworkTransport, TagRPC for the internal node RPC); the Mux
// reads it and hands the rest of the connection to the matching sub-listener.
// This keeps one port per node for all node-to-node traffic (the original's
// --raft-port), so configs and firewalls need nothing new.
//
// Ownership: Serve runs the accept loop until its ctx is cancelled or Close is
// called; it waits for the per-connection tag readers it started. Sub-listeners
// are closed with the Mux. Dial writes the tag byte before returning.
package mux
