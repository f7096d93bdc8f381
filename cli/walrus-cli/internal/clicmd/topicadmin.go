package clicmd

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/walrus-go/walrus/engine"
	"github.com/walrus-go/walrus/node/protocol"
)

// Topic administration: CREATE with settings, ALTER, DELETE.

func newCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create TOPIC [rf=N] [ack=N] [max_age_ms=N] [max_bytes=N] [max_entries=N]",
		Short: "Create TOPIC with its own replication and retention settings (an existing topic keeps its own); prints OK",
		Example: `  walrus-cli create audit rf=3 ack=2 max_age_ms=604800000
  walrus-cli create scratch rf=1 max_bytes=1073741824`,
		Args: minArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runAdmin(cmd, "CREATE", args) },
	}
}

func newAlterCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "alter TOPIC KEY=VALUE...",
		Short: "Change TOPIC's retention limits (max_age_ms, max_bytes, max_entries; 0 removes one); prints OK",
		Long: `Change the retention limits of TOPIC. A limit the topic does not set follows
the cluster's default (retention.* in the YAML config); 0 means no limit.
Retention deletes whole sealed segments, oldest first: the earliest offset
(walrus-cli offsets TOPIC) moves up.`,
		Example: `  walrus-cli alter logs max_age_ms=86400000
  walrus-cli alter logs max_bytes=0          # no byte limit`,
		Args: minArgs(2, "TOPIC and KEY=VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runAdmin(cmd, "ALTER", args) },
	}
}

func newDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Delete TOPIC: its data on every replica, its cursor and its groups; prints OK",
		Long: `Delete TOPIC everywhere. Its data, metadata, shared cursor and consumer groups
are gone; a later PUT or REGISTER makes a new topic from offset 0.`,
		Example: "  walrus-cli delete scratch",
		Args:    exactArgs(1, "TOPIC"),
		RunE:    func(cmd *cobra.Command, args []string) error { return a.runAdmin(cmd, "DELETE", args) },
	}
}

func (a *app) runAdmin(cmd *cobra.Command, command string, args []string) error {
	if err := engine.ValidateTopic(args[0]); err != nil {
		return usagef("topic %q: %v", args[0], err)
	}
	for _, kv := range args[1:] {
		if k, v, ok := strings.Cut(kv, "="); !ok || k == "" || v == "" || strings.ContainsAny(kv, " \t") {
			return usagef("setting %q: want KEY=VALUE", kv)
		}
	}
	return a.runOne(cmd, protocol.Request{Command: command, Topic: args[0], Args: args}, false)
}
