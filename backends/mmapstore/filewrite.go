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
// mapping wins by far (a 132-byte pwrite took 1.9 µs on the VM, a copy
// into the mapping a few hundred ns including its share of faults).
// README "Appends" has the measurements.
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
// from first) and writes it to f at off, through buf.
func writeBatchAt(f *os.File, off int64, first uint64, entries [][]byte, bodyBytes int, buf []byte) error {
	w := offsetWriter{f: f, off: off, buf: buf[:0]}
	var hdr [max(batchHeaderLen, entryHeaderLen)]byte
	putBatchHeader(hdr[:], len(entries), first, bodyBytes)
	w.write(hdr[:batchHeaderLen])
	for _, e := range entries {
		putEntryHeader(hdr[:], e)
		w.write(hdr[:entryHeaderLen])
		w.write(e)
	}
	w.flush()
	return w.err
}

// offsetWriter buffers sequential writes to f starting at off.
type offsetWriter struct {
	f   *os.File
	off int64
	buf []byte
	err error
}

func (w *offsetWriter) write(p []byte) {
	for len(p) > 0 && w.err == nil {
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
	}
}

func (w *offsetWriter) flush() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	n, err := w.f.WriteAt(w.buf, w.off)
	w.off += int64(n)
	w.buf = w.buf[:0]
	w.err = err
}
