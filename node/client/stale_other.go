//go:build !unix

package client

import "net"

// peerClosed cannot peek portably here; a closed connection is then found
// by the next call, which fails and must be retried on a new Client.
func peerClosed(net.Conn) bool { return false }
