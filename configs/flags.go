package configs

import (
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// flagBinding ties a command-line flag to the config key it overrides. The
// flag names are the original distributed-walrus daemon's.
type flagBinding struct {
	flag  string
	key   string
	usage string
}

var flagBindings = []flagBinding{
	{"node-id", "node_id", "node id (>= 1, unique in the cluster)"},
	{"data-dir", "data_dir", "data directory (holds node_<id>/)"},
	{"raft-host", "raft.host", "Raft listen host"},
	{"raft-port", "raft.port", "Raft listen port"},
	{"raft-advertise-host", "raft.advertise_host", "host other nodes use to reach this node's Raft port (default: --raft-host)"},
	{"client-host", "client.host", "client listener host"},
	{"client-port", "client.port", "client listener port"},
	{"http-port", "http.port", "HTTP /metrics /healthz /readyz port (0 = off)"},
	{"kafka-port", "kafka.port", "Kafka-protocol listener port (0 = off; 9092 when there is no config file)"},
	{"join", "join", "Raft address host:port of an existing member to join (repeatable)"},
	{"log-file", "log.file", "write the log to this file instead of stderr"},
	{"log-level", "log.level", "log level: debug, info, warn, error"},
}

// AddFlags defines the daemon's configuration flags on fs. Their defaults
// are shown in help only: a flag overrides the file and the environment
// only when it is given on the command line.
func AddFlags(fs *pflag.FlagSet) {
	d := Default()
	defs := map[string]string{
		"node_id":             strconv.FormatUint(d.NodeID, 10),
		"data_dir":            d.DataDir,
		"raft.host":           d.Raft.Host,
		"raft.port":           strconv.Itoa(d.Raft.Port),
		"raft.advertise_host": d.Raft.AdvertiseHost,
		"client.host":         d.Client.Host,
		"client.port":         strconv.Itoa(d.Client.Port),
		"http.port":           strconv.Itoa(d.HTTP.Port),
		"kafka.port":          strconv.Itoa(d.Kafka.Port),
		"log.file":            d.Log.File,
		"log.level":           d.Log.Level,
	}
	for _, b := range flagBindings {
		usage := b.usage + " [config key " + b.key + ", env WALRUS_" + strings.ToUpper(strings.ReplaceAll(b.key, ".", "_")) + "]"
		switch b.key {
		case "node_id":
			fs.Uint64(b.flag, d.NodeID, usage)
		case "raft.port", "client.port", "http.port", "kafka.port":
			n, _ := strconv.Atoi(defs[b.key])
			fs.Int(b.flag, n, usage)
		case "join":
			fs.StringSlice(b.flag, nil, usage)
		default:
			fs.String(b.flag, defs[b.key], usage)
		}
	}
}
