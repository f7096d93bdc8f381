package mmapstore

import (
	"fmt"
	"os"
	"sync"

	mmap "github.com/edsrzf/mmap-go"
	"github.com/walrus-go/walrus/engine"
)

// An open segment holds a file descriptor and a read-write mapping, and a
// process gets only so many of each (RLIMIT_NOFILE, vm.max_map_count:
// 65,530 by default). A node with a hundred thousand topics has that many
// open segments, nearly all idle, so at most MaxOpenSegments of them stay
// mapped; the others are parked: their descriptor closed and mapping
// dropped, their index and positions kept, and mapped again by the next
// append, read or seal. Parking fsyncs first in the durable modes, since
// the syncer can only sync a segment it holds a descriptor for.

// openSet bounds how many open segments are mapped at once. Eviction is
// CLOCK (second chance): appends and reads only set the segment's used
// flag, without a lock; a full set sweeps the hand past used segments,
// clearing their flag, and hands back the first unused ones. The caller
// parks them outside this lock, under each victim's own wmu.
type openSet struct {
	mu   sync.Mutex
	max  int
	segs []*segment
	hand int
}

func newOpenSet(max int) *openSet { return &openSet{max: max} }

// add records that sg was just mapped and returns the segments to park.
func (o *openSet) add(sg *segment) []*segment {
	sg.used.Store(true)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.insertLocked(sg)
	var victims []*segment
	// Two sweeps clear every flag that is not set again meanwhile; after
	// that, evict without a second chance so a busy store cannot spin.
	for spins := 0; len(o.segs) > o.max; spins++ {
		if o.hand >= len(o.segs) {
			o.hand = 0
		}
		v := o.segs[o.hand]
		if v == sg || (spins < 2*len(o.segs) && v.used.Swap(false)) {
			o.hand++
			continue
		}
		o.removeLocked(v)
		victims = append(victims, v)
	}
	return victims
}

// remove forgets sg (parked, sealed, deleted or closed).
func (o *openSet) remove(sg *segment) {
	o.mu.Lock()
	o.removeLocked(sg)
	o.mu.Unlock()
}

// insertLocked counts sg without evicting anything.
func (o *openSet) insertLocked(sg *segment) {
	if sg.openIdx == 0 {
		o.segs = append(o.segs, sg)
		sg.openIdx = len(o.segs)
	}
}

func (o *openSet) removeLocked(sg *segment) {
	if sg.openIdx == 0 {
		return
	}
	i, last := sg.openIdx-1, len(o.segs)-1
	o.segs[i] = o.segs[last]
	o.segs[i].openIdx = i + 1
	o.segs[last] = nil
	o.segs = o.segs[:last]
	sg.openIdx = 0
}

// len reports how many open segments are mapped (for tests).
func (o *openSet) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.segs)
}

// activateLocked maps a parked open segment again and records its use
// (wmu held). It returns the segments the store must now park.
func (sg *segment) activateLocked() ([]*segment, error) {
	if sg.state != stateOpen {
		return nil, nil
	}
	if sg.m != nil {
		sg.used.Store(true)
		return nil, nil
	}
	if err := sg.unparkLocked(); err != nil {
		return nil, err
	}
	return sg.env.open.add(sg), nil
}

// unparkLocked reopens and maps a parked open segment's file (wmu held).
func (sg *segment) unparkLocked() error {
	if err := sg.usableLocked(); err != nil {
		return err
	}
	f, err := os.OpenFile(sg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("reopen parked segment: %w: %w", err, engine.ErrUnavailable)
	}
	fi, err := f.Stat()
	if err == nil && uint64(fi.Size()) < sg.written.end {
		err = fmt.Errorf("file is %d bytes, its data ends at %d: %w", fi.Size(), sg.written.end, engine.ErrCorrupt)
		sg.fail(err)
	}
	var m mmap.MMap
	if err == nil {
		m, err = mmap.MapRegion(f, int(fi.Size()), mmap.RDWR, 0, 0)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("reopen parked segment %s: %w", sg.path, err)
	}
	sg.fdMu.Lock()
	sg.f = f
	sg.fdMu.Unlock()
	sg.mu.Lock()
	sg.m = m
	sg.mu.Unlock()
	return nil
}

// parkLocked drops the mapping and descriptor of an idle open segment
// (wmu held). It reports whether the segment is still open and mapped
// (so the set must keep counting it): one whose last batch waits for its
// fsync (always mode) or that failed keeps its mapping.
func (sg *segment) parkLocked() (stillMapped bool) {
	if sg.state != stateOpen || sg.m == nil {
		return false
	}
	if sg.failed() != nil {
		return true
	}
	sg.mu.RLock()
	w, pub, synced := sg.written, sg.published, sg.synced
	sg.mu.RUnlock()
	if w != pub {
		return true
	}
	sg.fdMu.Lock()
	defer sg.fdMu.Unlock()
	if sg.env.durable && synced.end < w.end {
		if err := sg.env.syncFile(sg.f); err != nil {
			sg.fail(fmt.Errorf("fdatasync before parking: %w: %w", err, engine.ErrUnavailable))
			return true
		}
		sg.mu.Lock()
		sg.synced = w
		sg.mu.Unlock()
	}
	sg.swapMapping(nil, "unmap parked segment")
	if err := sg.f.Close(); err != nil {
		sg.env.log.Warn("close parked segment file", "topic", sg.id.Topic, "segment", sg.id.Segment, "err", err)
	}
	sg.f = nil
	return false
}

// parkAll parks the victims an openSet handed back; the caller holds no
// segment lock.
func parkAll(e *env, victims []*segment) {
	for _, v := range victims {
		v.wmu.Lock()
		if v.parkLocked() {
			// Counted again (without evicting): a later add parks others.
			v.used.Store(true)
			e.open.mu.Lock()
			e.open.insertLocked(v)
			e.open.mu.Unlock()
		}
		v.wmu.Unlock()
	}
}
