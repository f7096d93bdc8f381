package mmapstore

import (
	"container/list"
	"sync"
)

// mappedSet bounds how many sealed segments are mapped at once. It is an
// LRU list of the mapped sealed segments; a reader that maps one adds it
// and gets back the least recently used ones beyond the bound, which it
// then evicts (unmaps) itself, outside this lock. Readers hold the victim's
// own lock while they copy, so eviction waits for them and never races.
//
// Membership is approximate under concurrency: a segment that is popped
// while a reader is using it stays mapped until the eviction completes,
// and a reader that touches a segment no longer in the list does not put
// it back (only mapping does). The bound can therefore be exceeded by the
// number of concurrent readers for a moment, never for longer.
type mappedSet struct {
	mu  sync.Mutex
	max int
	l   list.List // of *segment; front = most recently used
}

func newMappedSet(max int) *mappedSet {
	ms := &mappedSet{max: max}
	ms.l.Init()
	return ms
}

// add records that sg was just mapped and returns the segments to evict.
func (ms *mappedSet) add(sg *segment) []*segment {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if sg.lruElem != nil {
		ms.l.MoveToFront(sg.lruElem)
	} else {
		sg.lruElem = ms.l.PushFront(sg)
	}
	var victims []*segment
	for ms.l.Len() > ms.max {
		e := ms.l.Back()
		v := e.Value.(*segment)
		ms.l.Remove(e)
		v.lruElem = nil
		victims = append(victims, v)
	}
	return victims
}

// touch marks a mapped segment as recently used.
func (ms *mappedSet) touch(sg *segment) {
	ms.mu.Lock()
	if sg.lruElem != nil {
		ms.l.MoveToFront(sg.lruElem)
	}
	ms.mu.Unlock()
}

// remove forgets sg (deleted or closed).
func (ms *mappedSet) remove(sg *segment) {
	ms.mu.Lock()
	if sg.lruElem != nil {
		ms.l.Remove(sg.lruElem)
		sg.lruElem = nil
	}
	ms.mu.Unlock()
}

// len reports how many sealed segments the set holds (for tests).
func (ms *mappedSet) len() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.l.Len()
}
