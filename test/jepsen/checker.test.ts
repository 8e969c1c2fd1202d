// Goal: the linearizability checker says "linearizable" exactly when a history is, and explains
// failures (TESTING.md §3.4, §8(c)). Method: hand-made histories with known answers (including
// the report's contents); a differential test against a brute-force oracle on random tiny
// histories; generated linearizable histories must be accepted and the same with one injected
// stale read or lost write rejected. This file runs scaled-down counts; checker.slow.test.ts runs
// the full ones and the performance figures. Randomized tests print their seed (SEED=N replays).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAILED, UNKNOWN, type Op } from './checker/history.js';
import {
    casRegister, counter, register, set, type RegisterInput, type RegisterOutput, type SetInput, type SetOutput,
} from './checker/models.js';
import { checkLinearizable, describeResult } from './checker/linearizability.js';
import { bruteForceLinearizable } from './checker/brute-force.js';
import { performanceHistory, runAcceptance, runDifferential, runRejection, suiteSeed } from './checker/suites.js';
import { modelOf } from './checker/generate.js';

type RegOp = Op<RegisterInput, RegisterOutput>;
type SetOp = Op<SetInput, SetOutput>;
let nextId = 0;
function op(
    client: number, input: RegisterInput, output: RegOp['output'], call: number, ret: number, key = 'x',
): RegOp {
    return { id: nextId++, client, key, input, output, call: BigInt(call), ret: BigInt(ret) };
}
const w = (value: number): RegisterInput => ({ f: 'write', value });
const r: RegisterInput = { f: 'read' };

test('a sequential register history is linearizable; a read of an overwritten value is not', () => {
    const good = [
        op(0, w(1), undefined, 0, 10), op(1, r, 1, 20, 30), op(0, w(2), undefined, 40, 50), op(1, r, 2, 60, 70),
    ];
    assert.equal(checkLinearizable(register, good).verdict, 'ok');
    const bad = [op(0, w(1), undefined, 0, 10), op(0, w(2), undefined, 20, 30), op(1, r, 1, 40, 50)];
    const result = checkLinearizable(register, bad);
    assert.equal(result.verdict, 'illegal');
    const failure = result.partitions[0]?.failure;
    assert.ok(failure !== undefined);
    assert.deepEqual(failure.linearized.map((o) => o.id), [bad[0]?.id, bad[1]?.id]);
    assert.equal(failure.blocked.id, bad[2]?.id);
    assert.equal(failure.state, '2');
    assert.match(describeResult(register, result), /could not place: #\d+ c1 k=x read -> 1/);
    assert.match(describeResult(register, result), /proof: the blocked op observed 1/);
    // The search alone (without the overwritten-value proof) finds the same failure.
    const searched = checkLinearizable(register, bad, { proveOverwritten: false }).partitions[0]?.failure;
    assert.equal(searched?.state, '2');
    assert.equal(searched?.reason, undefined);
    assert.equal(searched?.blocked.id, bad[2]?.id);
});

test('the overwritten-value proof: only completed stores that real time orders before the observer count', () => {
    // A read of the initial null after a completed write: illegal, proved without search.
    const initial = [op(0, w(1), undefined, 0, 10), op(1, r, null, 20, 30)];
    const proved = checkLinearizable(register, initial);
    assert.equal(proved.verdict, 'illegal');
    assert.equal(proved.partitions[0]?.cacheEntries, 0);
    // ...unless some op could store null again (a CAS to null, even one that never returned).
    const cas = (from: number | null, to: number | null): RegisterInput => ({ f: 'cas', from, to });
    const restorable = [op(0, w(1), undefined, 0, 10), op(2, cas(1, null), UNKNOWN, 12, 14), op(1, r, null, 20, 30)];
    assert.equal(checkLinearizable(casRegister, restorable).verdict, 'ok');
    // An UNKNOWN overwrite proves nothing (it may never take effect), nor does a concurrent one.
    const unknown = [op(0, w(1), undefined, 0, 10), op(0, w(2), UNKNOWN, 12, 14), op(1, r, 1, 20, 30)];
    assert.equal(checkLinearizable(register, unknown).verdict, 'ok');
    const touching = [op(0, w(1), undefined, 0, 10), op(2, w(2), undefined, 10, 20), op(1, r, 1, 20, 30)];
    assert.equal(checkLinearizable(register, touching).verdict, 'ok');
    // A failed CAS stores nothing; a successful one overwrites.
    const failed = [op(0, w(1), undefined, 0, 10), op(2, cas(5, 6), false, 12, 14), op(1, r, 1, 20, 30)];
    assert.equal(checkLinearizable(casRegister, failed).verdict, 'ok');
    const swapped = [op(0, w(1), undefined, 0, 10), op(2, cas(1, 6), true, 12, 14), op(1, r, 1, 20, 30)];
    const result = checkLinearizable(casRegister, swapped);
    assert.equal(result.verdict, 'illegal');
    assert.equal(result.partitions[0]?.failure?.state, '6');
    // A write on another key of a map does not overwrite, even when checked unpartitioned.
    const map = modelOf('cas-map');
    const mapOp = (client: number, input: object, output: unknown, call: number, ret: number, key: string) =>
        ({ id: nextId++, client, key, input, output, call: BigInt(call), ret: BigInt(ret) });
    const otherKey = [
        mapOp(0, { f: 'write', key: 'a', value: 1 }, undefined, 0, 10, 'a'),
        mapOp(2, { f: 'write', key: 'b', value: 2 }, undefined, 12, 14, 'b'),
        mapOp(1, { f: 'read', key: 'a' }, 1, 20, 30, 'a'),
    ];
    assert.equal(checkLinearizable(map, otherKey, { partition: false }).verdict, 'ok');
    assert.equal(checkLinearizable(map, otherKey).verdict, 'ok');
});

test('the missing-element proof: a read lacking an add that returned before it began', () => {
    const add = (value: number): SetInput => ({ f: 'add', value });
    const sr: SetInput = { f: 'read' };
    const sop = (client: number, input: SetInput, output: SetOp['output'], call: number, ret: number): SetOp =>
        ({ id: nextId++, client, key: 's', input, output, call: BigInt(call), ret: BigInt(ret) });
    const lost = [sop(0, add(1), undefined, 0, 10), sop(0, add(2), undefined, 11, 15), sop(1, sr, [2], 20, 30)];
    const result = checkLinearizable(set, lost);
    assert.equal(result.verdict, 'illegal');
    assert.equal(result.partitions[0]?.cacheEntries, 0);
    assert.equal(checkLinearizable(set, lost, { proveOverwritten: false }).verdict, 'illegal');
    // Concurrent (touching) or UNKNOWN adds prove nothing.
    const touching = [sop(0, add(1), undefined, 0, 20), sop(1, sr, [], 20, 30)];
    assert.equal(checkLinearizable(set, touching).verdict, 'ok');
    const unknown = [sop(0, add(1), UNKNOWN, 0, 10), sop(1, sr, [], 20, 30)];
    assert.equal(checkLinearizable(set, unknown).verdict, 'ok');
});

test('concurrent ops may be ordered either way; touching intervals count as concurrent', () => {
    // The read overlaps both writes, so it may see either value.
    for (const seen of [1, 2]) {
        const h: RegOp[] = [op(0, w(1), undefined, 0, 10), op(1, w(2), undefined, 5, 15), op(2, r, seen, 0, 20)];
        assert.equal(checkLinearizable(register, h).verdict, 'ok');
    }
    // write(2) ends exactly when the read starts: still concurrent, so the read may see 1.
    const touching = [op(0, w(1), undefined, 0, 5), op(1, w(2), undefined, 6, 10), op(2, r, 1, 10, 12)];
    assert.equal(checkLinearizable(register, touching).verdict, 'ok');
    const after = [op(0, w(1), undefined, 0, 5), op(1, w(2), undefined, 6, 10), op(2, r, 1, 11, 12)];
    assert.equal(checkLinearizable(register, after).verdict, 'illegal');
});

test('unknown ops may take effect late or never; failed ops never', () => {
    // An unknown write that returned before the read may still take effect after it.
    const late = [op(0, w(1), undefined, 0, 5), op(1, w(2), UNKNOWN, 6, 8), op(2, r, 1, 10, 12), op(2, r, 2, 14, 16)];
    assert.equal(checkLinearizable(register, late).verdict, 'ok');
    assert.equal(bruteForceLinearizable(register, late), true);
    const never = [op(0, w(1), undefined, 0, 5), op(1, w(2), UNKNOWN, 6, 8), op(2, r, 1, 10, 12)];
    assert.equal(checkLinearizable(register, never).verdict, 'ok');
    // Once seen, a value cannot disappear again.
    const back = [...late, op(2, r, 1, 18, 20)];
    assert.equal(checkLinearizable(register, back).verdict, 'illegal');
    assert.equal(checkLinearizable(register, back, { patchUnknown: false }).verdict, 'illegal');
    const failed = [op(0, w(1), undefined, 0, 5), op(1, w(2), FAILED, 6, 8), op(2, r, 2, 10, 12)];
    assert.equal(checkLinearizable(register, failed).verdict, 'illegal');
});

test('an unseen unknown write is kept when a failed CAS may depend on it', () => {
    // cas(1→3) failed, which needs the state to differ from 1: only the unknown write(2) explains it.
    const h = [
        op(0, w(1), undefined, 0, 5),
        op(1, w(2), UNKNOWN, 6, 8),
        op(2, { f: 'cas', from: 1, to: 3 }, false, 10, 12),
    ];
    assert.equal(checkLinearizable(casRegister, h).verdict, 'ok');
    assert.equal(bruteForceLinearizable(casRegister, h), true);
});

test('keys are checked separately, and a violation names its key', () => {
    const h = [
        op(0, w(1), undefined, 0, 10, 'a'), op(1, w(5), undefined, 0, 10, 'b'),
        op(0, r, 1, 20, 30, 'a'), op(1, r, 1, 20, 30, 'b'),
    ];
    const result = checkLinearizable(register, h);
    assert.equal(result.verdict, 'illegal');
    assert.deepEqual(result.partitions.map((p) => [p.key, p.verdict]), [['a', 'ok'], ['b', 'illegal']]);
});

test('set and counter models', () => {
    const s = [
        { id: 0, client: 0, key: 's', input: { f: 'add', value: 1 }, output: undefined, call: 0n, ret: 5n },
        { id: 1, client: 1, key: 's', input: { f: 'add', value: 2 }, output: undefined, call: 0n, ret: 5n },
        { id: 2, client: 2, key: 's', input: { f: 'read' }, output: [2, 1], call: 6n, ret: 7n },
    ] as const;
    assert.equal(checkLinearizable(set, [...s] as never).verdict, 'ok');
    const missing = [...s.slice(0, 2), { ...s[2], output: [2] }];
    assert.equal(checkLinearizable(set, missing as never).verdict, 'illegal');
    const c = [
        { id: 0, client: 0, key: 'c', input: { f: 'add', delta: 2 }, output: UNKNOWN, call: 0n, ret: 5n },
        { id: 1, client: 1, key: 'c', input: { f: 'add', delta: 3 }, output: undefined, call: 0n, ret: 5n },
        { id: 2, client: 2, key: 'c', input: { f: 'read' }, output: 3, call: 6n, ret: 7n },
        { id: 3, client: 2, key: 'c', input: { f: 'read' }, output: 5, call: 8n, ret: 9n },
    ];
    assert.equal(checkLinearizable(counter, c as never).verdict, 'ok');
    const stale = [...c, { ...c[2], id: 4, call: 10n, ret: 11n }];
    assert.equal(checkLinearizable(counter, stale as never).verdict, 'illegal');
});

test('a partition over its budget is unknown, not ok', () => {
    let t = 0;
    const history = performanceHistory(7, 2000, 1, 10, 0.05);
    const result = checkLinearizable(modelOf('cas-map'), history, { budgetMs: 0, now: () => (t += 1) });
    assert.equal(result.verdict, 'unknown');
});

test('differential: 5,000 tiny random histories agree with the brute-force oracle', () => {
    const seed = suiteSeed('differential (fast)');
    const stats = runDifferential(seed, 5000);
    console.log(`# ${stats.histories} histories, ${stats.linearizable} linearizable, ` +
        `${stats.disagreements.length} disagreements`);
    assert.deepEqual(stats.disagreements.slice(0, 3), []);
    // Both answers must be well represented, or the test proves little.
    assert.ok(stats.linearizable > stats.histories * 0.2 && stats.linearizable < stats.histories * 0.9);
});

test('generated linearizable histories are accepted (60 histories, 200–600 ops)', () => {
    const seed = suiteSeed('acceptance (fast)');
    const stats = runAcceptance(seed, 60, 200, 600);
    console.log(`# accepted ${stats.accepted}/${stats.histories} (${stats.ops} ops, ` +
        `${stats.elapsedMs.toFixed(0)} ms checking, slowest ${stats.slowestMs.toFixed(0)} ms)`);
    assert.deepEqual(stats.failures.slice(0, 1), []);
});

test('histories with one injected stale read or lost write are rejected (30 histories, 200–400 ops)', () => {
    const seed = suiteSeed('rejection (fast)');
    const stats = runRejection(seed, 30, 200, 400);
    console.log(`# rejected ${stats.rejected}/${stats.histories} ${JSON.stringify(stats.byKind)} ` +
        `(${stats.elapsedMs.toFixed(0)} ms checking, slowest ${stats.slowestMs.toFixed(0)} ms)`);
    assert.deepEqual(stats.failures.slice(0, 3), []);
});
