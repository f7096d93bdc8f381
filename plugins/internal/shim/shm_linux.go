//go:build linux

package shim

import (
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// shmSupported: this build can carry appends through shared memory.
const shmSupported = true

// createShm creates an anonymous memory file of the ring's size, maps it
// and returns the mapping and the descriptor (the caller closes it once it
// was sent). The memory lives until both sides unmapped it; nothing is left
// on a file system, whoever dies.
func createShm(slots, slotBytes int) ([]byte, int, error) {
	size := shmRingBytes(slots, slotBytes)
	fd, err := unix.MemfdCreate("walrus-plugin-ring", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, -1, fmt.Errorf("%w: memfd_create: %w", errShm, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		_ = unix.Close(fd)
		return nil, -1, fmt.Errorf("%w: size the ring to %d bytes: %w", errShm, size, err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Close(fd)
		return nil, -1, fmt.Errorf("%w: map the ring: %w", errShm, err)
	}
	return mem, fd, nil
}

// mapShmFd maps a ring descriptor received from the host and closes it.
func mapShmFd(fd, slots, slotBytes int) ([]byte, error) {
	defer func() { _ = unix.Close(fd) }()
	size := shmRingBytes(slots, slotBytes)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%w: stat the ring: %w", errShm, err)
	}
	if st.Size < int64(size) {
		return nil, fmt.Errorf("%w: ring file of %d bytes, the hello announces %d", errShm, st.Size, size)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("%w: map the ring: %w", errShm, err)
	}
	return mem, nil
}

func unmapShm(mem []byte) { _ = unix.Munmap(mem) }

func closeFd(fd int) { _ = unix.Close(fd) }

// sendShm writes the token and the hello in one message that carries fd.
func sendShm(conn net.Conn, token, hello []byte, fd int) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%w: %T cannot pass a descriptor", errShm, conn)
	}
	msg := append(append([]byte(nil), token...), hello...)
	n, oobn, err := uc.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	if err != nil {
		return err
	}
	if n != len(msg) || oobn == 0 {
		return fmt.Errorf("%w: short write of the hello (%d of %d bytes)", errShm, n, len(msg))
	}
	return nil
}

// readToken reads the connection's token and returns the descriptor that
// came with it, or -1 (a plain data channel connection).
func readToken(conn net.Conn) ([]byte, int, error) {
	got := make([]byte, tokenBytes)
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		_, err := io.ReadFull(conn, got)
		return got, -1, err
	}
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for a few; extras are closed
	n, oobn, _, _, err := uc.ReadMsgUnix(got, oob)
	if err != nil {
		return nil, -1, err
	}
	fd := -1
	if oobn > 0 {
		fd, err = takeOneFd(oob[:oobn])
		if err != nil {
			return nil, -1, err
		}
	}
	if n < tokenBytes {
		if _, err := io.ReadFull(conn, got[n:]); err != nil {
			if fd >= 0 {
				_ = unix.Close(fd)
			}
			return nil, -1, err
		}
	}
	return got, fd, nil
}

// takeOneFd returns the single descriptor in a control message, closing
// any others (they are not ours to keep).
func takeOneFd(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, fmt.Errorf("%w: control message: %w", errShm, err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return -1, fmt.Errorf("%w: %d descriptors with the token, want 1", errShm, len(fds))
	}
	return fds[0], nil
}
