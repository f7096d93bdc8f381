package mmapstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// File layout under the store directory:
//
//	<dir>/LOCK                         flock'ed while a Store has the directory open
//	<dir>/topics/<topic>/<seg>.seg     one file per segment; <seg> is the segment
//	                                   number as 20 decimal digits
//	<dir>/topics/<topic>/<seg>.seg.tmp a segment being created (removed on open)
//
// <topic> is the topic name itself, used only after engine.ValidateTopic
// accepted it: one path component of at most 255 bytes, not "." or "..",
// with no '/', '\\', NUL, control or space characters, so it cannot name
// anything outside <dir>/topics. segmentPath re-checks that the joined path
// stays a direct child of <dir>/topics as a second line of defence.

const (
	topicsDirName = "topics"
	lockFileName  = "LOCK"
	segSuffix     = ".seg"
	tmpSuffix     = ".tmp"
	segNameDigits = 20
)

func segmentFileName(seg uint64) string {
	s := strconv.FormatUint(seg, 10)
	return strings.Repeat("0", segNameDigits-len(s)) + s + segSuffix
}

// parseSegmentFileName returns the segment number of a well-formed name.
func parseSegmentFileName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// topicDir returns <topicsDir>/<topic> for a topic that already passed
// engine.ValidateTopic, refusing anything that would not be a direct child.
func topicDir(topicsDir, topic string) (string, error) {
	p := filepath.Join(topicsDir, topic)
	if filepath.Dir(p) != filepath.Clean(topicsDir) || filepath.Base(p) != topic {
		return "", fmt.Errorf("topic %q does not map to one directory under %s", topic, topicsDir)
	}
	return p, nil
}

// preallocate makes [off, off+n) of f allocated on disk, extending the file.
// Allocated blocks matter with mmap: a store through a mapping into a hole
// on a full disk cannot fail with an error, it raises SIGBUS. fallocate
// reserves the blocks up front so a full disk surfaces here as ENOSPC.
// File systems without fallocate get explicit zero writes instead.
func preallocate(f *os.File, off, n int64) error {
	if n <= 0 {
		// fallocate(2) refuses a zero length with EINVAL; recovery asks
		// for none when the valid data ends exactly at the file's end.
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, off, n)
	if err == nil || !(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for n > 0 {
		c := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:c], off); err != nil {
			return err
		}
		off += c
		n -= c
	}
	return nil
}

// fdatasync flushes the file's data (including pages dirtied through a
// shared mapping: Linux tracks those in the page cache like write(2)ed
// pages, and msync(MS_SYNC) is the same operation) and the metadata needed
// to read it back, such as the file size.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// syncfs writes back every dirty page of the file system holding dir
// (pages dirtied through shared mappings included) and reports a
// writeback error that happened since, as fsync would for one file.
func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		err := unix.Syncfs(int(d.Fd()))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// syncDir makes entries created in or removed from dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockDir takes an exclusive, non-blocking flock on <dir>/LOCK so two
// stores (or two processes) never write the same segments.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s (is another store using this directory?): %w", f.Name(), err)
	}
	return f, nil
}
