//go:build !linux

package shim

import (
	"fmt"
	"io"
	"net"
)

// shmSupported: shared memory is only built on Linux (memfd and descriptor
// passing); elsewhere the data channel carries frames on its socket.
const shmSupported = false

func createShm(int, int) ([]byte, int, error) {
	return nil, -1, fmt.Errorf("%w: not supported on this operating system", errShm)
}

func mapShmFd(int, int, int) ([]byte, error) {
	return nil, fmt.Errorf("%w: not supported on this operating system", errShm)
}

func unmapShm([]byte) {}

func closeFd(int) {}

func sendShm(net.Conn, []byte, []byte, int) error {
	return fmt.Errorf("%w: not supported on this operating system", errShm)
}

func readToken(conn net.Conn) ([]byte, int, error) {
	got := make([]byte, tokenBytes)
	_, err := io.ReadFull(conn, got)
	return got, -1, err
}
