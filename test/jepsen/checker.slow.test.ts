// Goal: the linearizability checker's acceptance figures from TESTING.md §8(c).
// Method: the suites of checker.test.ts at size: 100,000 tiny random histories against the
// brute-force oracle (0 disagreements); generated linearizable histories of 200–2,000 ops with up
// to 10 clients and UNKNOWN ops (all accepted); the same with one injected stale read or lost
// write (all rejected: none accepted and, at the default counts, none `unknown`); the performance histories (10,000 ops over 100 keys and 2,000 ops on one
// key, concurrency 10, 5 % UNKNOWN) against 5 s and 10 s of CPU time (the machine is shared, so
// wall time is printed but not asserted). SEED=N replays; JEPSEN_CHECKER_COUNT=N sets the number
// of histories per suite (10000 for the full counts; see below for the defaults).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelOf } from './checker/generate.js';
import { checkLinearizable } from './checker/linearizability.js';
import { performanceHistory, runAcceptance, runDifferential, runRejection, suiteSeed } from './checker/suites.js';

// Sizes. The full 10,000-history suites take a long wall time on the shared 2-core machine, too
// long for every `npm test` (CI's whole budget is 30 minutes). By default they run 150 accepted
// and 60 rejected histories, the rejected ones with a 10 s search budget per partition (an
// `unknown` is reported, never a pass); JEPSEN_CHECKER_COUNT=N runs N (at most the full counts)
// with the 60 s budget.
const override = process.env['JEPSEN_CHECKER_COUNT'];
const count = (full: number, usual = full): number =>
    (override !== undefined ? Math.min(full, Number(override)) : usual);

test('differential: 100,000 tiny random histories agree with the brute-force oracle', () => {
    const seed = suiteSeed('differential');
    const started = performance.now();
    const stats = runDifferential(seed, count(100_000));
    console.log(`# ${stats.histories} histories, ${stats.linearizable} linearizable, ` +
        `${stats.disagreements.length} disagreements, ${(performance.now() - started).toFixed(0)} ms`);
    assert.deepEqual(stats.disagreements.slice(0, 3), []);
});

test('generated linearizable histories (200–2,000 ops; 10,000 with JEPSEN_CHECKER_COUNT) are all accepted', () => {
    const seed = suiteSeed('acceptance');
    const stats = runAcceptance(seed, count(10_000, 150), 200, 2000);
    console.log(`# accepted ${stats.accepted}/${stats.histories} (${stats.ops} ops, ` +
        `${stats.elapsedMs.toFixed(0)} ms checking, slowest ${stats.slowestMs.toFixed(0)} ms) ` +
        JSON.stringify(stats.byKindMs, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v)));
    assert.deepEqual(stats.failures.slice(0, 1), []);
});

test('histories with one injected stale read or lost write (10,000 with JEPSEN_CHECKER_COUNT) are rejected', () => {
    const seed = suiteSeed('rejection');
    const stats = runRejection(seed, count(10_000, 60), 200, 2000, override !== undefined ? 60_000 : 10_000);
    console.log(`# rejected ${stats.rejected}/${stats.histories}, accepted ${stats.accepted}, ` +
        `unknown ${stats.histories - stats.rejected - stats.accepted} (${stats.elapsedMs.toFixed(0)} ms checking, ` +
        `slowest ${stats.slowestMs.toFixed(0)} ms) ${JSON.stringify(stats.byKind)}`);
    // Issue 8: 100 % rejected. No injected history may be accepted, and none may end `unknown`
    // (a search out of budget). Register and map stale reads are proved by the overwritten-value
    // check without search (linearizability.ts); before it ~2 % of them ran out of budget.
    assert.equal(stats.accepted, 0, stats.failures.slice(0, 3).join('\n'));
    const unknown = stats.histories - stats.rejected - stats.accepted;
    assert.equal(unknown, 0, `${unknown} unknown: ${stats.failures.slice(0, 3).join('\n')}`);
});

test('performance: 10,000 ops over 100 keys within 5 s; 2,000 ops on one key within 10 s (CPU time)', () => {
    const seed = suiteSeed('performance');
    const model = modelOf('cas-map');
    const cpuMs = (since: NodeJS.CpuUsage): number => {
        const used = process.cpuUsage(since);
        return (used.user + used.system) / 1000;
    };
    const wideHistory = performanceHistory(seed, 10_000, 100, 10, 0.05);
    const wideStart = process.cpuUsage();
    const wide = checkLinearizable(model, wideHistory, { budgetMs: 60_000 });
    const wideCpuMs = cpuMs(wideStart);
    const narrowHistory = performanceHistory(seed, 2000, 1, 10, 0.05);
    const narrowStart = process.cpuUsage();
    const narrow = checkLinearizable(model, narrowHistory, { budgetMs: 60_000 });
    const narrowCpuMs = cpuMs(narrowStart);
    console.log(`# 10,000 ops / 100 keys / 10 clients / 5 % unknown: ${wide.verdict}, ` +
        `${wide.elapsedMs.toFixed(0)} ms wall, ${wideCpuMs.toFixed(0)} ms CPU`);
    console.log(`# 2,000 ops / 1 key / 10 clients / 5 % unknown: ${narrow.verdict}, ` +
        `${narrow.elapsedMs.toFixed(0)} ms wall, ${narrowCpuMs.toFixed(0)} ms CPU, ` +
        `${narrow.partitions[0]?.cacheEntries} cache entries`);
    assert.equal(wide.verdict, 'ok');
    assert.equal(narrow.verdict, 'ok');
    // CPU time, not wall time: the CI machine is shared, and the figures are for this process.
    assert.ok(wideCpuMs <= 5000, `10,000 ops took ${wideCpuMs.toFixed(0)} ms of CPU`);
    assert.ok(narrowCpuMs <= 10_000, `2,000 ops took ${narrowCpuMs.toFixed(0)} ms of CPU`);
});
