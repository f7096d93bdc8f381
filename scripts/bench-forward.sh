#!/usr/bin/env bash
# Forwarded vs direct PUT, rf=1, in one sitting: for each build given, start
# a fresh 3-node cluster, create one rf=1 topic per run, then alternate
# `walrus-cli bench produce` against the topic's segment leader (direct) and
# against another node (forwarded), with 16 clients and 1 and 64 requests in
# flight. Prints benchstat lines (ns/msg) into $OUT/<label>.txt and a
# msgs/s log on stderr.
#
#   scripts/bench-forward.sh RUNS LABEL=BIN_DIR [LABEL=BIN_DIR ...]
#   benchstat bench-out/fwd-old.txt bench-out/fwd-new.txt
#
# Env: OUT (default bench-out), MESSAGES_SYNC (default 100000),
# MESSAGES_PIPE (default 500000), plus CONFIGS/ADDRS/CLUSTER_DIR (lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
[[ $# -ge 2 ]] || die "usage: $0 RUNS LABEL=BIN_DIR [LABEL=BIN_DIR ...]"
RUNS=$1
shift
OUT=${OUT:-bench-out} MSYNC=${MESSAGES_SYNC:-100000} MPIPE=${MESSAGES_PIPE:-500000}
command -v jq >/dev/null || die "jq is needed"
mkdir -p "$OUT"
scripts=$(dirname "${BASH_SOURCE[0]}")
# lib.sh turned CONFIGS and ADDRS into arrays, which bash does not export:
# hand the child scripts their scalar form.
CONFIGS_LIST="${CONFIGS[*]}" ADDRS_LIST="${ADDRS[*]}"
sub() { CONFIGS=$CONFIGS_LIST ADDRS=$ADDRS_LIST "$@"; }
for spec in "$@"; do : >"$OUT/fwd-${spec%%=*}.txt"; done

one() { # label bin addr route p topic
	local label=$1 bin=$2 addr=$3 route=$4 p=$5 topic=$6 n=$MSYNC msgs
	((p == 1)) || n=$MPIPE
	msgs=$("$bin/walrus-cli" --addr "$addr" --timeout 30s bench produce --topic-prefix "$topic" --topics 1 \
		--messages "$n" --clients 16 --pipeline "$p" --json | jq -r .msgs_per_sec)
	awk -v r="$route" -v p="$p" -v m="$msgs" 'BEGIN { printf "BenchmarkProduce/rf=1/%s/16x%d 1 %.0f ns/msg\n", r, p, 1e9 / m }' >>"$OUT/fwd-$label.txt"
	log "$label $route 16x$p: $msgs msgs/s"
}

for run in $(seq "$RUNS"); do
	for spec in "$@"; do
		label=${spec%%=*} bin=$(realpath "${spec#*=}")
		log "run $run of $RUNS: $label"
		BIN=$bin NO_BUILD=1 sub "$scripts/cluster-up.sh" >/dev/null 2>&1 || die "$label cluster did not start"
		topic="fw$run"
		"$bin/walrus-cli" --addr "${ADDRS[0]}" do CREATE "$topic-0" rf=1 ack=1 >/dev/null
		leader=""
		for _ in $(seq 50); do
			leader=$("$bin/walrus-cli" --addr "${ADDRS[0]}" state "$topic-0" 2>/dev/null | jq -r .leader_node) && [[ $leader =~ ^[1-3]$ ]] && break
			sleep 0.1
		done
		direct=${ADDRS[$((leader - 1))]} other=${ADDRS[$((leader % 3))]}
		for p in 1 64; do
			if ((run % 2)); then
				one "$label" "$bin" "$direct" direct "$p" "$topic"
				one "$label" "$bin" "$other" forwarded "$p" "$topic"
			else
				one "$label" "$bin" "$other" forwarded "$p" "$topic"
				one "$label" "$bin" "$direct" direct "$p" "$topic"
			fi
		done
		sub "$scripts/cluster-down.sh" >/dev/null 2>&1 || true
		sub "$scripts/cluster-wipe.sh" >/dev/null 2>&1 || true
	done
done
log "done: benchstat $OUT/fwd-*.txt"
