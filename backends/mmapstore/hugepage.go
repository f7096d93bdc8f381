package mmapstore

import (
	mmap "github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// Batches smaller than pwriteMinBytes (filewrite.go) are copied into a
// shared mapping of a preallocated file, so the first store to every page
// of it faults: the kernel allocates a page-cache
// page, zero-fills it (the file's blocks are fallocated but unwritten),
// runs the file system's page_mkwrite and installs a PTE. With 4 KiB pages
// that is one fault per 4 KiB, about one per 38 entries of 100 bytes.
// Under a shadow-paging hypervisor (the 2-core development VM runs under
// PVM) each new PTE also costs a host-level fault on first access, about
// 6 µs, which the guest's fault counters do not see. Together that was
// half of an append's time on that VM, while write(2) pays none of it (it
// copies through the kernel's own mapping), but for a small batch a system
// call costs more than its share of faults. README "Appends" has the
// measurements.
//
// MADV_HUGEPAGE on an open segment's mapping lets the kernel back it with
// 2 MiB page-cache folios mapped by one PMD, where the file system
// supports large folios (ext4 since Linux 6.16, xfs, tmpfs): one fault
// and one page-table entry per 2 MiB instead of 512. Where it does not, or
// where transparent huge pages are disabled, the advice is a no-op and
// appends behave as before. Contents, format and crash behaviour do not
// change: this only decides how the page cache is organised.
//
// It is used only with durability none, and only once a segment holds
// hugeAfterBytes:
//
//   - Dirty tracking of a mapped folio is per folio: a store anywhere in a
//     2 MiB folio makes all of it dirty, so every fdatasync writes whole
//     2 MiB folios, and a write after writeback splits the PMD again. In
//     always mode (and interval mode, a sync every 100 ms) a small append
//     would then cost a 2 MiB write and a fault; with none only the
//     kernel's own writeback (every 30 s by default) and Seal or Close
//     fsync, once per folio.
//   - A quiet segment would pin 2 MiB of page cache for a few bytes; with
//     one open segment per topic and thousands of topics that adds up.
//     Below hugeAfterBytes a segment keeps 4 KiB pages, so a topic has to
//     write 4 MiB before it is given huge pages.
//
// A background goroutine that pre-faulted pages ahead of the write end
// with MADV_POPULATE_WRITE was measured too and rejected (README): it made
// appends slower on the 2-core VM.

// hugeAfterBytes is how much a segment file must hold (header included)
// before its mapping is advised to use huge pages.
const hugeAfterBytes = 4 << 20

// adviseHuge asks for m to be backed by transparent huge pages. EINVAL
// (kernel without THP) is expected and harmless, so errors are only
// returned for the log.
func adviseHuge(m mmap.MMap) error {
	if len(m) == 0 {
		return nil
	}
	return unix.Madvise(m, unix.MADV_HUGEPAGE)
}
