package mmapstore

import (
	"os"
)

// Batches of at least pwriteMinBytes are appended with pwrite(2) instead
// of being copied into the mapping; readers still read them through the
// mapping (Linux has one page cache, so a write through the descriptor is
// visible in a shared mapping of the same file at once). This is what
// Kafka does: write through the file, read through the page cache.
//
// Why: a store through a mapping into a page not touched before faults
// (page-cache allocation, zero-fill of the unwritten block, page_mkwrite,
// a new PTE, and under a shadow-paging hypervisor a host-level fault on
// top), while pwrite copies through the kernel's own mapping and pays only
// the allocation. Its price is one system call per batch, about 1 µs on
// the 2-core development VM and a few hundred ns on bare metal, plus one
// more copy (the batch is framed into a buffer first). From about a page
// per batch on, the faults it avoids cost more than that; below, the
// mapping wins by far: with a 1 KiB threshold, 1 KiB single-entry appends
// fell from 0.7 M to 0.23 M entries/s on the VM. Small batches therefore
// still pay the mapping's faults; the two ways found to hide them (huge
// pages, a pre-faulting goroutine) helped in one machine state and hurt in
// another. README "Appends" has the measurements.
//
// Durability and crash behaviour are the same on both paths: either way
// the bytes are in the page cache when Append returns, fdatasync covers
// them, and a torn batch fails verification on recovery. Every offset
// written is below the file size (the file was grown first), so pwrite
// needs no new blocks and RLIMIT_FSIZE never applies.
const pwriteMinBytes = 4 << 10

// pwriteBufBytes is the size of the buffer a batch is framed into before
// each pwrite; larger batches take several calls. Buffers are pooled per
// Store, so the heap cost is one buffer per concurrent appender.
const pwriteBufBytes = 256 << 10

// writeBatchAt frames entries as one batch (bodyBytes of frames, offsets
// from first) into buf, which holds at least pwriteBufBytes, and writes it
// to f at off, one pwrite per buffer full.
func writeBatchAt(f *os.File, off int64, first uint64, entries [][]byte, bodyBytes int, buf []byte) error {
	putBatchHeader(buf, len(entries), first, bodyBytes)
	n := batchHeaderLen
	for _, e := range entries {
		if len(buf)-n < entryHeaderLen {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
			off, n = off+int64(n), 0
		}
		putEntryHeader(buf[n:], e)
		n += entryHeaderLen
		for p := e; len(p) > 0; {
			if n == len(buf) {
				if _, err := f.WriteAt(buf, off); err != nil {
					return err
				}
				off, n = off+int64(n), 0
			}
			c := copy(buf[n:], p)
			n += c
			p = p[c:]
		}
	}
	_, err := f.WriteAt(buf[:n], off)
	return err
}
