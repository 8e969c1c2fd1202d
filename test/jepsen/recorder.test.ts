// Goal: the recorder produces histories the checker can judge: call before the request, return
// after it settles, definite failures FAILED, everything else UNKNOWN with a fresh client id.
// Method: concurrent async workers (seeded interleaving via setImmediate hops, printed seed)
// against an in-memory register that answers correctly must yield a linearizable history; one
// whose reads answer from a stale snapshot must be caught.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { FAILED, UNKNOWN, validateHistory } from './checker/history.js';
import { checkLinearizable } from './checker/linearizability.js';
import { register, type RegisterInput, type RegisterOutput } from './checker/models.js';
import { HistoryRecorder } from './recorder.js';
import { suiteSeed } from './checker/suites.js';

async function hops(rng: SeededRandom): Promise<void> {
    for (let i = rng.int(4); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
}

async function runWorkload(seed: number, stale: boolean): Promise<HistoryRecorder<RegisterInput, RegisterOutput>> {
    const rng = new SeededRandom(seed);
    const recorder = new HistoryRecorder<RegisterInput, RegisterOutput>({
        definiteFailure: (e) => (e as { code?: string }).code === 'REFUSED',
    });
    let value: number | null = null;
    let snapshot: number | null = null;
    let nextValue = 1;
    const worker = async (w: number): Promise<void> => {
        for (let i = 0; i < 40; i++) {
            const isWrite = rng.chance(0.5);
            const input: RegisterInput = isWrite ? { f: 'write', value: nextValue++ } : { f: 'read' };
            const fate = rng.float();
            await recorder.record(w, 'x', input, async () => {
                await hops(rng);
                if (fate < 0.05) throw Object.assign(new Error('refused'), { code: 'REFUSED' });
                if (input.f === 'write') {
                    value = input.value as number;
                    if (rng.chance(0.1)) snapshot = value;
                }
                if (fate < 0.1) throw new Error('timeout after the write took effect, or before');
                await hops(rng);
                if (input.f === 'read') return stale && rng.chance(0.3) ? snapshot : value;
                return undefined;
            });
        }
    };
    await Promise.all([0, 1, 2, 3, 4].map(worker));
    return recorder;
}

test('recorded histories of a correct register are linearizable', async () => {
    const seed = suiteSeed('recorder');
    const recorder = await runWorkload(seed, false);
    const history = recorder.history();
    assert.deepEqual(validateHistory(history), []);
    assert.equal(recorder.pendingCount, 0);
    assert.ok(history.some((op) => op.output === FAILED));
    assert.ok(history.some((op) => op.output === UNKNOWN));
    // Each UNKNOWN op retires its client id.
    const clients = new Set(history.map((op) => op.client));
    assert.ok(clients.size > 5);
    for (const op of history) assert.ok(op.ret >= op.call);
    assert.equal(checkLinearizable(register, history).verdict, 'ok');
});

test('a register that serves stale snapshots is caught', async () => {
    const seed = suiteSeed('recorder stale');
    let caught = 0;
    for (let i = 0; i < 5; i++) {
        const recorder = await runWorkload(seed + i, true);
        if (checkLinearizable(register, recorder.history()).verdict === 'illegal') caught++;
    }
    assert.equal(caught, 5, `only ${caught} of 5 stale runs caught`);
});
