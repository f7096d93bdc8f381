//go:build unix

package diskguard

import "golang.org/x/sys/unix"

// statfs reports f_bavail, not f_bfree: blocks reserved for root are not
// usable by the node (as walrus_disk_free_bytes).
func statfs(dir string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Usage{}, err
	}
	bsize := uint64(st.Bsize) //nolint:unconvert // int64 or uint32 by platform
	return Usage{FreeBytes: uint64(st.Bavail) * bsize, TotalBytes: uint64(st.Blocks) * bsize}, nil
}
