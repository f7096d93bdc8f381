//go:build unix

package client

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports, without blocking or consuming data, whether the peer
// has closed conn (a pending EOF or reset). Unsolicited data counts as
// open: the next read will deal with it.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == nil:
			closed = n == 0
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		default:
			closed = true // ECONNRESET and friends
		}
		return true // never wait for readability
	})
	return closed || err != nil
}
