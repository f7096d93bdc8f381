# shellcheck shell=bash
# Shared settings for the local-cluster scripts. Sourced, not executed.
# Every path and address can be overridden from the environment, which is how
# the tests run the same scripts on another directory.
ROOT=${WALRUS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BIN=${BIN:-$ROOT/bin}
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
LOG_DIR=$CLUSTER_DIR/logs
PID_DIR=$CLUSTER_DIR/pids
# CONFIGS and ADDRS are parallel lists: node i is started from CONFIGS[i] and
# answers clients on ADDRS[i].
read -r -a CONFIGS <<<"${CONFIGS:-configs/node1.yaml configs/node2.yaml configs/node3.yaml}"
read -r -a ADDRS <<<"${ADDRS:-127.0.0.1:9091 127.0.0.1:9092 127.0.0.1:9093}"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# node_name CONFIG -> node1 (the config file's base name without extension)
node_name() { local b; b=$(basename "$1"); printf '%s' "${b%.*}"; }

# pid_alive PID -> 0 when PID is a live walrus process we may signal.
# Checking the command line guards against a recycled PID after a reboot or a
# crash: we never signal a process that is not a walrus node.
pid_alive() {
	local pid=$1
	[[ -n $pid && -d /proc/$pid ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q walrus
}

# running_pids prints "pidfile pid" for every recorded node that is still alive.
running_pids() {
	local f pid
	[[ -d $PID_DIR ]] || return 0
	for f in "$PID_DIR"/*.pid; do
		[[ -e $f ]] || continue
		pid=$(<"$f")
		if pid_alive "$pid"; then printf '%s %s\n' "$f" "$pid"; fi
	done
}

# config_data_dir CONFIG prints the data_dir the config uses (key `data_dir`
# at any indentation; quotes stripped). Empty when the key is absent.
config_data_dir() {
	sed -n -E 's/^[[:space:]]*data_dir:[[:space:]]*"?([^"#]*[^"#[:space:]])"?[[:space:]]*(#.*)?$/\1/p' "$1" | head -n1
}

# config_node_id CONFIG prints the node_id the config sets (empty when absent).
config_node_id() {
	sed -n -E 's/^node_id:[[:space:]]*"?([0-9]+)"?[[:space:]]*(#.*)?$/\1/p' "$1" | head -n1
}
