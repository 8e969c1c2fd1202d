// Goal: the nemesis harness's list-append check (appendCheck in run.ts) passes a correct history
// and reports each anomaly it claims to find: a lost acknowledged append, a read that is not a
// prefix of the final list, a stale read exposed by real time, an aborted read, a duplicate.
// Method: small hand-made histories (no randomness), as the workload records them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendCheck } from './run.js';
import { FAILED, UNKNOWN, type Op } from '../checker/history.js';
import type { AppendInput, AppendOutput } from './workloads.js';

type AppendOp = Op<AppendInput, AppendOutput>;

function op(id: number, input: AppendInput, output: AppendOp['output'], call: number, ret: number): AppendOp {
    return { id, client: id, key: 'la', input, output, call: BigInt(call), ret: BigInt(ret) };
}

const base: AppendOp[] = [
    op(1, [{ f: 'append', key: 1, value: 10 }], [null], 0, 1),
    op(2, [{ f: 'append', key: 1, value: 11 }], [null], 2, 3),
    op(3, [{ f: 'append', key: 1, value: 12 }], UNKNOWN, 4, 5),
    op(4, [{ f: 'read', key: 1 }], [[10, 11, 12]], 6, 7),
];

test('a correct history passes, with its figures', () => {
    const r = appendCheck(base, 4);
    assert.deepEqual(r.anomalies, []);
    assert.equal(r.acknowledged, 2);
    assert.equal(r.recovered, 1);
    assert.equal(r.keys, 1);
});

test('an acknowledged append missing from the final read is lost', () => {
    const r = appendCheck([...base, op(5, [{ f: 'append', key: 1, value: 13 }], [null], 8, 9),
        op(6, [{ f: 'read', key: 1 }], [[10, 11, 12]], 10, 11)], 6);
    assert.equal(r.lost, 1);
    assert.ok(r.anomalies.some((a) => a.startsWith('lost:')));
});

test('a read that is not a prefix, a stale read, an aborted read and a duplicate are reported', () => {
    const bad = (extra: AppendOp[], final: number, prefix: string): void => {
        const r = appendCheck([...base, ...extra], final);
        assert.ok(r.anomalies.some((a) => a.startsWith(prefix)), `${prefix}: ${JSON.stringify(r.anomalies)}`);
    };
    bad([op(5, [{ f: 'read', key: 1 }], [[11]], 8, 9)], 4, 'incompatible-order');
    bad([op(5, [{ f: 'read', key: 1 }], [[10]], 8, 9)], 4, 'G-single-realtime');
    bad([op(5, [{ f: 'append', key: 2, value: 20 }], FAILED, 8, 9),
        op(6, [{ f: 'read', key: 2 }], [[20]], 10, 11)], 4, 'G1a');
    bad([op(5, [{ f: 'read', key: 1 }], [[10, 10]], 8, 9)], 4, 'txn 5 read a duplicate');
});
