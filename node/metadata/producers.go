package metadata

// ProducerBlockSize is how many Kafka producer ids one AllocProducerIDs
// hands a node.
const ProducerBlockSize = 1 << 12

// AllocProducerIDs hands node the next block of Kafka producer ids
// (Kafka's ProducerIdBlock): the node gives them out to InitProducerId
// calls until the block is used up or it restarts, then asks again. The
// counter only grows and is in every snapshot, so no id is handed out
// twice, across leader changes and restarts.
type AllocProducerIDs struct {
	Node uint64 `json:"node"`
}

// Kind implements Command.
func (AllocProducerIDs) Kind() Kind { return KindAllocProducerIDs }

func (f *FSM) applyAllocProducerIDs(c AllocProducerIDs) Result {
	if c.Node == 0 {
		return invalid("alloc producer ids: node 0")
	}
	if f.state.ProducerBlocks == nil {
		f.state.ProducerBlocks = map[uint64]uint64{}
	}
	// Id 0 is left out: a batch's producer id 0 would be easy to send by
	// mistake, and -1 means "no producer" in Kafka.
	next := max(f.state.NextProducerID, 1)
	f.state.ProducerBlocks[c.Node] = next
	f.state.NextProducerID = next + ProducerBlockSize
	return Result{Status: Applied}
}

// ProducerBlock returns the first id of the block last handed to node.
func (f *FSM) ProducerBlock(node uint64) (uint64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, ok := f.state.ProducerBlocks[node]
	return b, ok
}
