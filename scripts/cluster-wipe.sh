#!/usr/bin/env bash
# Delete each configured node's data directory (<data_dir>/node_<id>) and the
# cluster's logs and PID files.
# Refuses while any recorded node is still running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if [[ -n $(running_pids) ]]; then
	die "cluster is running; run scripts/cluster-down.sh first"
fi
for cfg in "${CONFIGS[@]}"; do
	[[ -f $cfg ]] || { log "config $cfg not found, skipping"; continue; }
	dir=$(config_data_dir "$cfg")
	if [[ -z $dir ]]; then
		log "$cfg sets no data_dir; nothing to wipe for it"
		continue
	fi
	id=$(config_node_id "$cfg")
	[[ -n $id ]] || die "$cfg sets no node_id; cannot tell which node directory to wipe"
	abs=$(realpath -m -- "$dir")
	# Only the node's own directory (<data_dir>/node_<id>, the layout every
	# backend uses) is removed: data_dir itself may be shared with other data.
	node_dir=$abs/node_$id
	if [[ -e $node_dir ]]; then
		rm -rf -- "$node_dir"
		log "removed $node_dir (node $id of $cfg)"
	fi
	# and the data_dir (and its parent, e.g. ./data) once nothing else is in them
	rmdir -- "$abs" 2>/dev/null && rmdir -- "$(dirname -- "$abs")" 2>/dev/null || true
done
rm -rf -- "$LOG_DIR" "$PID_DIR"
rmdir -- "$CLUSTER_DIR" 2>/dev/null || true
log "wiped"
