#!/usr/bin/env bash
# Stop the nodes started by cluster-up.sh, by their recorded PIDs only:
# SIGTERM, then SIGKILL after DOWN_TIMEOUT seconds (default 15).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DOWN_TIMEOUT=${DOWN_TIMEOUT:-15}

if [[ ! -d $PID_DIR ]]; then
	log "no cluster recorded in $PID_DIR"
	exit 0
fi
pids=()
for f in "$PID_DIR"/*.pid; do
	[[ -e $f ]] || continue
	pid=$(<"$f")
	if pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$pid")
		log "sent SIGTERM to $(basename "${f%.pid}") (pid $pid)"
	fi
done
deadline=$((SECONDS + DOWN_TIMEOUT))
for pid in "${pids[@]}"; do
	while pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			log "pid $pid still running after ${DOWN_TIMEOUT}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
done
# A SIGKILLed process may take a moment to disappear.
for pid in "${pids[@]}"; do
	for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
done
rm -f "$PID_DIR"/*.pid
log "cluster down (${#pids[@]} node(s) stopped)"
