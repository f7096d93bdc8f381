// Package kafka owns the node's Kafka-protocol listener: it reads Kafka
// requests (decoded and encoded with franz-go's kmsg only), dispatches them
// by API key and version, and serves them from the same storage,
// replication and metadata as the Walrus protocol.
//
// Mapping. Partition 0 of Kafka topic T is the Walrus log T, so a topic
// created natively is a one-partition Kafka topic; partition p >= 1 is the
// log "T#p" ('#' is not legal in Kafka topic names, so no Kafka topic can
// be named like a partition log, and the text protocol refuses to create
// such names itself: see Reserved). A topic has as many partitions as
// consecutive logs T, T#1, T#2, ... exist. Every log is an ordinary Walrus
// topic: TOPICS lists it and STATE, OFFSETS and FETCH reach it. Kafka
// offsets are the topic-wide log offsets.
//
// Leadership. A partition's leader is the leader of its log's open
// segment; replicas and ISR are that segment's replica set. Produce is
// served by that leader only: any other node, or the leader after a
// rollover or failover moved the open segment, answers
// NOT_LEADER_OR_FOLLOWER and the client refreshes its metadata. Fetch,
// ListOffsets and the admin APIs are served by every node (reads go
// through topiclog, which returns only what the ack quorum holds).
//
// Security. With users configured a connection authenticates with SASL
// (ksasl) or a verified client certificate first; ACLs are checked per
// API by kauthz in front of the handlers (docs/kafka.md#security).
//
// Records are stored as record.Version2 (producer timestamp, key, value,
// headers byte for byte, plus the leader's append time), or Version3 with
// the producer id, epoch and sequence of an idempotent producer (kidem
// rebuilds the producers' state from them). docs/kafka.md documents the
// API keys and versions served.
package kafka
