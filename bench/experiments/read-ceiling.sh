#!/bin/bash
# What limits kvread (issue 7): how fast could a tqlite leader answer kvread's queries if the
# SQL cost nothing? Builds two patched copies of HEAD (read-ceiling.patch) and measures them in
# one perf-rounds run beside real dqlite and unpatched HEAD:
#
#   reply  the wire session answers every QUERY_SQL at once with a row of kvread's shape: the
#          floor of a Node.js server on this machine (socket, wire decode/encode), no checks;
#   gate   the node's read checks run (waitLeaderReady, then the ReadIndex round, or the lease
#          check with +lease-reads), then the same row, without the SQLite worker.
#
# The difference between gate and HEAD is the worker hop (and SQLite); between reply and gate,
# the leadership check. Not for CI: an experiment to re-run when the read path changes.
#
#   npm run build && bash bench/experiments/read-ceiling.sh
#
# Environment: PERF_ROUNDS (3), PERF_DURATION_S (5), PERF_WORKLOADS (kvread:4), as perf-rounds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for mode in reply gate; do
    mkdir -p "$WORK/$mode"
    git -C "$ROOT" archive HEAD | tar -x -C "$WORK/$mode"
    ln -s "$ROOT/node_modules" "$WORK/$mode/node_modules"
    (cd "$WORK/$mode" && git apply "$ROOT/bench/experiments/read-ceiling.patch" \
        && sed -i "s/@MODE@/$mode/" src/node/session.ts src/server/session.ts \
        && npx tsc -p . --outDir build)
done
cd "$ROOT"
PERF_WORKLOADS=${PERF_WORKLOADS:-kvread:4} \
PERF_CLUSTERS="dqlite,tqlite:build,tqlite:build+lease-reads,tqlite:$WORK/reply/build,\
tqlite:$WORK/gate/build,tqlite:$WORK/gate/build+lease-reads" \
    node build/bench/perf-rounds.js
