package metrics

import (
	"errors"
	"io/fs"
	"syscall"
)

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// allocatedBytes is the on-disk size of a file (st_blocks * 512), falling
// back to its length when the platform does not report blocks.
func allocatedBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
