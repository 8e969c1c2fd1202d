// Goal: the simulator is deterministic — the same seed gives the same run, bit for bit — in
// this thread and on the worker pool alike (TESTING.md §2.7 "determinism self-check").
// Method: run 20 seeds twice in this thread and once on 2 worker threads, and compare the trace
// hashes (a rolling hash of every event, every message and the final state of every node).
// The seeds' base is printed; the outcome of each run (pass/fail) is not this test's concern.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCoreFactory } from './core-adapter.js';
import { runSeeds } from './runner.js';
import { simulate } from './simulation.js';
import { swarmOptions } from './options.js';

const BASE = 7_000;
const COUNT = 20;

test('the same seed gives the same trace hash, in this thread and on workers', async () => {
    console.log(`determinism seeds ${BASE}..${BASE + COUNT - 1}`);
    const factory = await loadCoreFactory();
    const seeds = Array.from({ length: COUNT }, (_, i) => BASE + i);
    const first: string[] = [];
    for (const seed of seeds) first.push((await simulate(seed, factory)).traceHash);
    const second: string[] = [];
    for (const seed of seeds) second.push((await simulate(seed, factory)).traceHash);
    assert.deepEqual(second, first);
    const pooled = await runSeeds(seeds, { workers: 2 });
    assert.deepEqual(pooled.map((r) => r.traceHash), first);
    // Different seeds do differ (the hash is not a constant).
    assert.ok(new Set(first).size > COUNT / 2);
});

test('swarm options are a pure function of the seed and cover every cluster size', () => {
    assert.deepEqual(swarmOptions(123), swarmOptions(123));
    const sizes = new Set<number>();
    for (let seed = 0; seed < 200; seed++) sizes.add(swarmOptions(seed).clusterSize);
    assert.deepEqual([...sizes].sort(), [1, 3, 5, 7]);
});
