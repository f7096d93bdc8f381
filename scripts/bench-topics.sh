#!/usr/bin/env bash
# The many-topics sitting of docs/benchmarks.md ("100,000 topics"): on a
# fresh 3-node loopback cluster of its own (client ports 29091-29093, HTTP
# 29101-29103, Raft 26001-26003, data in a temp dir), one busy topic's PUT
# latency at 10 topics, `bench topics` with N topics, the busy topic again,
# the idle cluster's CPU, then a stop and start of all three nodes and a
# restart of one follower, each timed. The cluster is stopped at the end.
#
#   scripts/bench-topics.sh [topics]    # default 100000; needs ~1 GiB RAM and
#                                       # ~1.5 GB of disk per 100k topics per node
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-100000}
W=$(mktemp -d /tmp/walrus-bench-topics.XXXXXX)
trap 'for p in "$W"/node*.pid; do kill "$(cat "$p")" 2>/dev/null || true; done; sleep 1; rm -rf "$W"' EXIT
go build -C "$ROOT" -o "$W/bin/" ./cli/...
C="$W/bin/walrus-cli"
A=127.0.0.1:29091,127.0.0.1:29092,127.0.0.1:29093
H=127.0.0.1:29101,127.0.0.1:29102,127.0.0.1:29103
for i in 1 2 3; do
	sed -e "s#^data_dir: .*#data_dir: $W/data#" -e "s/port: 600$i/port: 2600$i/" \
		-e "s/port: 909$i/port: 2909$i/" -e "s/port: 910$i/port: 2910$i/" \
		-e "s/127.0.0.1:6001/127.0.0.1:26001/" "$ROOT/configs/node$i.yaml" >"$W/node$i.yaml"
done
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
start() { "$W/bin/walrus" --config "$W/node$1.yaml" </dev/null >>"$W/node$1.log" 2>&1 & echo $! >"$W/node$1.pid"; }
ready() { until curl -sf "127.0.0.1:2910$1/readyz" >/dev/null 2>&1; do sleep 0.05; done; }
stop() { kill -TERM "$(cat "$W/node$1.pid")"; while kill -0 "$(cat "$W/node$1.pid")" 2>/dev/null; do sleep 0.05; done; }
busy() {
	for _ in 1 2; do
		"$C" bench produce --addrs $A --topics 1 --topic-prefix busy --messages 100000 --clients 4 --pipeline 16 --size 100 | grep -E 'throughput|latency'
	done
	"$C" bench produce --addrs 127.0.0.1:29091 --topics 1 --topic-prefix busy --messages 20000 --clients 1 --pipeline 1 --size 100 | grep -E 'throughput|latency'
}
ticks() { local t=0; for i in 1 2 3; do t=$((t + $(awk '{print $14+$15}' "/proc/$(cat "$W/node$i.pid")/stat"))); done; echo $t; }

for i in 1 2 3; do start $i; sleep 1; done
for i in 1 2 3; do ready $i; done
echo "== $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$ROOT" rev-parse --short HEAD)"
echo "== busy topic at 10 topics"
"$C" --addr 127.0.0.1:29091 bench topics --topics 10 --prefix small >/dev/null
busy
echo "== $N topics"
"$C" --timeout 120s bench topics --addrs $A --http $H --topics "$N" --conns 3 --stats-wait 30s
echo "== busy topic at $N topics"
busy
t0=$(ticks); sleep 10; t1=$(ticks)
echo "== idle CPU of the cluster: $(echo "scale=2; ($t1 - $t0) / 1000" | bc) cores (ticks of 10 ms over 10 s)"
for i in 1 2 3; do p=$(cat "$W/node$i.pid"); echo "node$i: $(ls /proc/$p/fd | wc -l) descriptors, $(wc -l </proc/$p/maps) mappings, $(grep VmRSS /proc/$p/status)"; done
for r in 1 2; do
	s=$(now); for i in 1 2 3; do stop $i & done; wait; echo "== all three stopped in $(since "$s") s"
	s=$(now); for i in 1 2 3; do start $i; done; for i in 1 2 3; do ready $i; done; echo "== all three ready in $(since "$s") s"
done
sleep 5
for r in 1 2; do
	s=$(now); stop 2; echo "== node 2 stopped in $(since "$s") s"
	s=$(now); start 2; ready 2; echo "== node 2 ready in $(since "$s") s (load $(cut -d' ' -f1 /proc/loadavg))"
	sleep 3
done
