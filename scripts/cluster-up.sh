#!/usr/bin/env bash
# Start a local 3-node cluster in the background and wait until it has a leader.
#
#   scripts/cluster-up.sh            # build ./bin, start configs/node{1,2,3}.yaml
#   NO_BUILD=1 scripts/cluster-up.sh # use the binaries already in $BIN
#
# Logs: .cluster/logs/<node>.log   PIDs: .cluster/pids/<node>.pid
# Env: BIN, CLUSTER_DIR, CONFIGS, ADDRS (see lib.sh), UP_TIMEOUT (seconds, default 60).
# TLS nodes (configs/secure): export WALRUS_TLS_CA=certs/ca.crt so the readiness check (walrus-cli) verifies them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
UP_TIMEOUT=${UP_TIMEOUT:-60}

if [[ -n $(running_pids) ]]; then
	die "a cluster is already running (PIDs in $PID_DIR); run scripts/cluster-down.sh first"
fi
if [[ ${#CONFIGS[@]} -ne ${#ADDRS[@]} ]]; then
	die "CONFIGS has ${#CONFIGS[@]} entries but ADDRS has ${#ADDRS[@]}"
fi
for cfg in "${CONFIGS[@]}"; do
	[[ -f $cfg ]] || die "config $cfg not found"
done

if [[ -z ${NO_BUILD:-} ]]; then
	log "building into $BIN"
	mkdir -p "$BIN"
	go build -o "$BIN" ./cli/...
fi
[[ -x $BIN/walrus && -x $BIN/walrus-cli ]] || die "$BIN/walrus or $BIN/walrus-cli missing (build first)"

mkdir -p "$LOG_DIR" "$PID_DIR"
for cfg in "${CONFIGS[@]}"; do
	name=$(node_name "$cfg")
	# stdin from /dev/null and output to a file: the node must not hold the
	# caller's terminal or pipes open (a test waiting on this script's output
	# would otherwise hang until the nodes exit).
	nohup "$BIN/walrus" --config "$cfg" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
	echo $! >"$PID_DIR/$name.pid"
	log "started $name (pid $!, config $cfg, log $LOG_DIR/$name.log)"
done

# Wait until every node answers METRICS and one says it is the Leader.
deadline=$((SECONDS + UP_TIMEOUT))
while :; do
	leader="" answered=0
	for i in "${!CONFIGS[@]}"; do
		name=$(node_name "${CONFIGS[$i]}")
		pid=$(<"$PID_DIR/$name.pid")
		if ! pid_alive "$pid"; then
			log "$name exited during start-up; last log lines:"
			tail -n 20 "$LOG_DIR/$name.log" >&2 || true
			"$(dirname "${BASH_SOURCE[0]}")/cluster-down.sh" || true
			die "$name failed to start"
		fi
		if out=$("$BIN/walrus-cli" --addr "${ADDRS[$i]}" --timeout 2s metrics 2>/dev/null); then
			answered=$((answered + 1))
			if grep -Eq '"state"[[:space:]]*:[[:space:]]*"Leader"' <<<"$out"; then
				leader="$name (${ADDRS[$i]})"
			fi
		fi
	done
	if [[ -n $leader && $answered -eq ${#CONFIGS[@]} ]]; then
		log "cluster up: leader is $leader; client addresses: ${ADDRS[*]}"
		exit 0
	fi
	if ((SECONDS >= deadline)); then
		log "no leader with all ${#CONFIGS[@]} nodes answering after ${UP_TIMEOUT}s (answered: $answered); logs in $LOG_DIR"
		exit 1
	fi
	sleep 0.5
done
