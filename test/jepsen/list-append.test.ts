// Goal: the list-append (Elle-style) checker finds no anomaly in histories of an atomic, strictly
// serializable store, and names the classic ones: write skew (G2), read skew (G-single), a stale
// read that only real time exposes, aborted reads and incompatible orders. Method: a seeded
// simulated store that applies each transaction at a point inside its interval (printed seed,
// SEED=N replays), and hand-made histories for each anomaly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { checkListAppend, type MicroOp, type Txn } from './checker/list-append.js';
import { suiteSeed } from './checker/suites.js';

let nextId = 0;
function txn(ops: MicroOp[], call: number, ret: number, status: Txn['status'] = 'ok'): Txn {
    return { id: nextId++, client: 0, ops, status, call: BigInt(call), ret: BigInt(ret) };
}
const append = (key: string, value: number): MicroOp => ({ f: 'append', key, value });
const read = (key: string, value: number[]): MicroOp => ({ f: 'read', key, value });

test('histories of an atomic store have no anomalies', () => {
    const seed = suiteSeed('list-append');
    const rng = new SeededRandom(seed);
    for (let round = 0; round < 20; round++) {
        const lists = new Map<string, number[]>();
        let nextValue = 1;
        const planned: { call: number; ret: number; point: number; ops: MicroOp[]; status: Txn['status'] }[] = [];
        const clock = [0, 0, 0, 0, 0];
        for (let i = 0; i < 200; i++) {
            const c = rng.int(clock.length);
            const call = (clock[c] as number) + rng.int(10);
            const ret = call + rng.int(50);
            clock[c] = ret;
            const ops: MicroOp[] = [];
            for (let j = rng.range(1, 4); j > 0; j--) {
                const key = `k${rng.int(3)}`;
                ops.push(rng.chance(0.5) ? append(key, nextValue++) : { f: 'read', key, value: undefined });
            }
            const status = rng.chance(0.05) ? 'fail' : rng.chance(0.05) ? 'unknown' : 'ok';
            planned.push({ call, ret, point: call + rng.float() * (ret - call), ops, status });
        }
        const applied = planned.filter((p) => p.status === 'ok' || (p.status === 'unknown' && rng.chance(0.5)));
        applied.sort((a, b) => a.point - b.point);
        const results = new Map<object, MicroOp[]>();
        for (const p of applied) {
            results.set(p, p.ops.map((op) => {
                const list = lists.get(op.key) ?? [];
                if (op.f === 'append') {
                    lists.set(op.key, [...list, op.value]);
                    return op;
                }
                return { f: 'read', key: op.key, value: [...list] };
            }));
        }
        const history = planned.map((p) =>
            txn(p.status === 'ok' ? results.get(p) as MicroOp[] : p.ops, p.call, p.ret, p.status));
        const report = checkListAppend(history);
        assert.deepEqual(report.anomalies, [], `round ${round}`);
        assert.ok(report.edgeCount > 0);
    }
});

test('write skew is G2', () => {
    const t1 = txn([read('x', []), append('y', 1)], 0, 10);
    const t2 = txn([read('y', []), append('x', 2)], 0, 10);
    const t3 = txn([read('x', [2]), read('y', [1])], 20, 30);
    const report = checkListAppend([t1, t2, t3]);
    assert.deepEqual(report.anomalies.map((a) => a.kind), ['G2']);
    assert.deepEqual(new Set(report.anomalies[0]?.cycle?.map((c) => c.txn)), new Set([t1.id, t2.id]));
});

test('read skew is G-single; a read that real time makes stale is G-single-realtime', () => {
    const t1 = txn([append('x', 1), append('y', 1)], 0, 10);
    const t2 = txn([read('x', []), read('y', [1])], 0, 10);
    const t3 = txn([read('x', [1])], 20, 30);
    assert.deepEqual(checkListAppend([t1, t2, t3]).anomalies.map((a) => a.kind), ['G-single']);

    const w = txn([append('x', 1)], 0, 10);
    const stale = txn([read('x', [])], 20, 30);
    const later = txn([read('x', [1])], 40, 50);
    assert.deepEqual(checkListAppend([w, stale, later]).anomalies.map((a) => a.kind), ['G-single-realtime']);
    // Concurrent, the same reads are fine.
    const concurrent = txn([read('x', [])], 5, 30);
    assert.deepEqual(checkListAppend([w, concurrent, later]).anomalies, []);
});

test('aborted reads and incompatible orders', () => {
    const failed = txn([append('x', 1)], 0, 10, 'fail');
    const reader = txn([read('x', [1])], 20, 30);
    assert.deepEqual(checkListAppend([failed, reader]).anomalies.map((a) => a.kind), ['G1a aborted-read']);
    const a = txn([append('x', 1)], 0, 10);
    const b = txn([append('x', 2)], 0, 10);
    const r1 = txn([read('x', [1, 2])], 20, 30);
    const r2 = txn([read('x', [2, 1])], 20, 30);
    const kinds = checkListAppend([a, b, r1, r2]).anomalies.map((x) => x.kind);
    assert.ok(kinds.includes('incompatible-order'));
});
