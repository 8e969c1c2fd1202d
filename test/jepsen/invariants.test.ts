// Goal: the set and bank invariant checkers flag exactly lost, stale and unexpected set elements
// and reads of a bank whose total changed. Method: hand-made histories for each finding, then
// generated linearizable set histories (seeded; SEED=N replays) that must pass, and the same
// with one injected lost write that must fail. A bank is simulated with seeded transfers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { generateHistory, inject } from './checker/generate.js';
import { FAILED, UNKNOWN, type Op } from './checker/history.js';
import {
    checkBank, checkSet,
    type BankInput, type BankOutput, type SetWorkloadInput, type SetWorkloadOutput,
} from './checker/invariants.js';
import { suiteSeed } from './checker/suites.js';

type SetOp = Op<SetWorkloadInput, SetWorkloadOutput>;
const add = (id: number, value: number, output: SetOp['output'], call: number, ret: number): SetOp =>
    ({ id, client: id, key: 's', input: { f: 'add', value }, output, call: BigInt(call), ret: BigInt(ret) });
const read = (id: number, values: number[], call: number, ret: number): SetOp =>
    ({ id, client: 100 + id, key: 's', input: { f: 'read' }, output: values, call: BigInt(call), ret: BigInt(ret) });

test('set: lost, stale, unexpected and recovered elements', () => {
    const good = checkSet([
        add(0, 1, undefined, 0, 5), add(1, 2, UNKNOWN, 0, 5), add(2, 3, FAILED, 0, 5), read(3, [1, 2], 6, 7),
    ]);
    assert.equal(good.ok, true);
    assert.equal(good.recovered, 1);
    assert.equal(good.acknowledged, 1);

    const lost = checkSet([add(0, 1, undefined, 0, 5), read(1, [1], 6, 7), read(2, [], 8, 9)]);
    assert.deepEqual(lost.lost, [1]);
    assert.deepEqual(lost.stale, [{ read: 2, value: 1 }]);
    assert.equal(lost.ok, false);

    // A read concurrent with the add may miss it; one that began after it returned may not.
    const concurrent = checkSet([add(0, 1, undefined, 0, 5), read(1, [], 4, 6), read(2, [1], 7, 8)]);
    assert.equal(concurrent.ok, true);
    const unexpected = checkSet([add(0, 1, undefined, 0, 5), read(1, [1, 9], 6, 7)]);
    assert.deepEqual(unexpected.unexpected, [9]);
    assert.equal(checkSet([add(0, 1, undefined, 0, 5)]).hasFinalRead, false);
});

test('set: generated linearizable histories pass; an injected lost write fails', () => {
    const seed = suiteSeed('set invariants');
    const rng = new SeededRandom(seed);
    for (let i = 0; i < 50; i++) {
        const history = generateHistory(rng, {
            kind: 'set', ops: rng.range(50, 300), clients: rng.range(1, 10), keys: 1, unknownRate: 0.05,
            failRate: 0.02, uniqueValues: true, durationMax: 100, gapMax: 10, unitNs: 1000,
        }) as SetOp[];
        // The final read after everything, seeing the state the generator would produce.
        const end = history.reduce((t, op) => (op.ret > t ? op.ret : t), 0n) + 1000n;
        const applied = checkSet(history);
        assert.equal(applied.stale.length + applied.unexpected.length, 0, `case ${i}`);
        const lostWrite = inject(rng, 'set', history, 'lost-write') as SetOp[] | undefined;
        if (lostWrite === undefined) continue;
        const report = checkSet(lostWrite);
        assert.ok(report.stale.length > 0 || report.lost.length > 0, `case ${i}: injected lost write not found`);
        assert.ok(end > 0n);
    }
});

test('bank: reads must see every account and the constant total', () => {
    const seed = suiteSeed('bank');
    const rng = new SeededRandom(seed);
    const accounts = ['a', 'b', 'c', 'd'];
    const balances: Record<string, number> = { a: 25, b: 25, c: 25, d: 25 };
    const history: Op<BankInput, BankOutput>[] = [];
    for (let i = 0; i < 500; i++) {
        const t = BigInt(i * 10);
        if (rng.chance(0.5)) {
            const from = rng.pick(accounts);
            const to = rng.pick(accounts.filter((x) => x !== from));
            const amount = rng.range(1, 10);
            balances[from] = (balances[from] as number) - amount;
            balances[to] = (balances[to] as number) + amount;
            const input: BankInput = { f: 'transfer', from, to, amount };
            history.push({ id: i, client: i % 5, key: 'bank', input, output: undefined, call: t, ret: t + 5n });
        } else {
            const output = { ...balances };
            history.push({ id: i, client: i % 5, key: 'bank', input: { f: 'read' }, output, call: t, ret: t + 5n });
        }
    }
    const report = checkBank(history, { total: 100, accounts });
    assert.equal(report.ok, true);
    assert.ok(report.reads > 100);
    const broken = [...history, {
        id: 999, client: 0, key: 'bank', input: { f: 'read' }, output: { a: 30, b: 25, c: 25, d: 25 },
        call: 9000n, ret: 9001n,
    } as Op<BankInput, BankOutput>, {
        id: 1000, client: 0, key: 'bank', input: { f: 'read' }, output: { a: 50, b: 50 }, call: 9002n, ret: 9003n,
    } as Op<BankInput, BankOutput>];
    const bad = checkBank(broken, { total: 100, accounts });
    assert.deepEqual(bad.bad.map((b) => b.read), [999, 1000]);
});
