package client

import (
	"crypto/tls"
	"net"
	"time"
)

// tlsProbe bounds the read that checks an idle TLS connection.
const tlsProbe = time.Millisecond

// connClosed reports whether the server closed conn while it was idle.
// A TLS connection cannot be peeked at on its socket: a closing server
// first sends a close_notify alert, which is data. So it is read through
// TLS with a very short deadline instead: a timeout means open (crypto/tls
// keeps a partial record and the connection stays usable), EOF or another
// error means closed, and application data nobody asked for means the
// stream can no longer be trusted, so it counts as closed too.
func connClosed(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return peerClosed(conn)
	}
	if peerClosed(tc.NetConn()) {
		return true
	}
	_ = tc.SetReadDeadline(time.Now().Add(tlsProbe))
	var b [1]byte
	n, err := tc.Read(b[:])
	_ = tc.SetReadDeadline(time.Time{})
	if n > 0 {
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}
