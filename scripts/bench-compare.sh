#!/usr/bin/env bash
# Compare `walrus-cli bench produce` between two builds in one sitting, in
# benchstat's format: runs alternate between the builds, each on a fresh
# 3-node cluster (configs/node{1,2,3}.yaml), so machine noise hits both.
#
#   go build -o /tmp/old ./cli/...   (at the old commit)
#   go build -o /tmp/new ./cli/...   (at the new one)
#   scripts/bench-compare.sh /tmp/old /tmp/new 5
#   benchstat bench-out/old.txt bench-out/new.txt
#
# Cases: rf=1 (ack 1) and rf=3 (ack 2), 16 clients with 1 and 64 requests in
# flight, to the topic's segment leader. Env: OUT (default bench-out),
# MESSAGES (default 100000 per case).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
[[ $# -ge 2 ]] || die "usage: $0 OLD_BIN_DIR NEW_BIN_DIR [RUNS]"
OLD=$(realpath "$1") NEW=$(realpath "$2") RUNS=${3:-5}
OUT=${OUT:-bench-out} MESSAGES=${MESSAGES:-100000}
command -v jq >/dev/null || die "jq is needed"
mkdir -p "$OUT"
: >"$OUT/old.txt"
: >"$OUT/new.txt"
scripts=$(dirname "${BASH_SOURCE[0]}")

one_cluster() { # side bindir
	local side=$1 bin=$2 rf ack leader addr p msgs
	BIN=$bin NO_BUILD=1 "$scripts/cluster-up.sh" >/dev/null 2>&1 || die "$side cluster did not start"
	for rf in 1 3; do
		ack=$((rf == 1 ? 1 : 2))
		"$bin/walrus-cli" --addr "${ADDRS[0]}" do CREATE "f$rf-0" "rf=$rf" "ack=$ack" >/dev/null
		leader=""
		for _ in $(seq 50); do
			leader=$("$bin/walrus-cli" --addr "${ADDRS[0]}" state "f$rf-0" 2>/dev/null | jq -r .leader_node) && [[ $leader =~ ^[1-3]$ ]] && break
			sleep 0.1
		done
		addr=${ADDRS[$((leader - 1))]}
		for p in 1 64; do
			msgs=$("$bin/walrus-cli" --addr "$addr" --timeout 30s bench produce --topic-prefix "f$rf" --topics 1 \
				--messages "$MESSAGES" --clients 16 --pipeline "$p" --json | jq -r .msgs_per_sec)
			awk -v rf="$rf" -v p="$p" -v m="$msgs" 'BEGIN { printf "BenchmarkProduce/rf=%d/16x%d 1 %.0f ns/msg\n", rf, p, 1e9 / m }' >>"$OUT/$side.txt"
			log "$side rf=$rf 16x$p: $msgs msgs/s"
		done
	done
	"$scripts/cluster-down.sh" >/dev/null 2>&1 || true
	"$scripts/cluster-wipe.sh" >/dev/null 2>&1 || true
}

for run in $(seq "$RUNS"); do
	log "run $run of $RUNS"
	one_cluster old "$OLD"
	one_cluster new "$NEW"
done
log "done: benchstat $OUT/old.txt $OUT/new.txt"
