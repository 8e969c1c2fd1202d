#!/bin/bash
# Where one write's time goes (issue 7, kvwrite 1): builds a copy of HEAD with
# write-timeline.patch (timestamps of named points of the write path on every node, written
# only when TQ_TRACE is set) and runs write-timeline.ts against a 3-node cluster of it: one
# client, one row at a time, SECONDS (20) after a 3 s warm-up. Prints the median timeline of a
# write across the client, the leader, its SQLite worker and the followers, and what the slow
# writes overlapped (durable-index fsyncs, checkpoints, segment preallocation, GC pauses). Not
# for CI: an experiment to re-run when the write path changes. When the patch no longer applies
# (`git apply` fails loudly), regenerate it.
#
#   npm run build && bash bench/experiments/write-timeline.sh [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git -C "$ROOT" archive HEAD | tar -x -C "$WORK"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
(cd "$WORK" && git apply "$ROOT/bench/experiments/write-timeline.patch" && npx tsc -p . --outDir build)
cd "$ROOT"
node build/bench/experiments/write-timeline.js "$WORK/build" "${1:-20}"
