// Goal: the log store behaves exactly like an array of entries under any sequence of appends,
// suffix truncations, prefix compactions (after a snapshot), term/vote updates, reads,
// restarts and crashes at quiescent points (every operation acknowledged, so a crash must lose
// nothing).
// Method: fast-check model-based testing (fc.commands + asyncModelRun) against a plain array
// model, on a SimFs with small segments so rollovers happen often; a crash applies a random
// subset of the still-pending file-system ops (renames/unlinks nobody waited for) with torn
// writes. ≥ 1,000 runs of up to 30 commands. The seed is printed; replay with SEED=<n>.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SimFs, crashPlans } from '../../../src/lib/sim-fs.js';
import { SeededRandom } from '../../../src/lib/random.js';
import { LogStore } from '../../../src/log/log-store.js';
import type { Entry, EntryType, HardState } from '../../../src/raft/types.js';

const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000);
const RUNS = Number(process.env.RUNS ?? 1000);
const DIR = '/d/raft';
const SEGMENT_BYTES = 4096;

interface Model {
    log: Entry[];
    hardState: HardState;
    snapshotIndex: number;
    compacted: number;
}

interface Real {
    fs: SimFs;
    store: LogStore;
}

function entry(index: number, term: number, size: number, salt: number): Entry {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (index * 31 + salt * 7 + i) & 0xff;
    return { index, term, type: ((salt % 3) + 1) as EntryType, data };
}

function checkSame(m: Model, r: Real): void {
    assert.equal(r.store.lastIndex, Math.max(m.log.length, m.compacted), 'lastIndex');
    assert.equal(r.store.hardState.term, m.hardState.term);
    assert.equal(r.store.hardState.vote, m.hardState.vote);
    const last = m.log.length;
    if (last > m.compacted) assert.equal(r.store.term(last), m.log[last - 1]?.term);
}

function checkLoaded(m: Model, entries: Entry[], snapshot: number): void {
    assert.equal(snapshot, m.snapshotIndex, 'snapshot index after load');
    const want = m.log.slice(m.snapshotIndex);
    assert.equal(entries.length, want.length, 'entries after load');
    entries.forEach((e, k) => {
        const w = want[k] as Entry;
        assert.equal(e.index, w.index);
        assert.equal(e.term, w.term);
        assert.equal(e.type, w.type);
        assert.deepEqual(Buffer.from(e.data), Buffer.from(w.data));
    });
}

async function reopen(m: Model, r: Real): Promise<void> {
    const { store, state } = await LogStore.open({ fs: r.fs, dir: DIR, segmentBytes: SEGMENT_BYTES });
    r.store = store;
    checkLoaded(m, state.entries, state.snapshot?.index ?? 0);
    // After a load the log starts right after the snapshot.
    m.compacted = m.snapshotIndex;
    checkSame(m, r);
}

class Append implements fc.AsyncCommand<Model, Real> {
    constructor(readonly sizes: number[], readonly salt: number) {}
    check(): boolean {
        return true;
    }
    async run(m: Model, r: Real): Promise<void> {
        const term = Math.max(1, m.hardState.term);
        const first = Math.max(m.log.length, m.compacted) + 1;
        while (m.log.length < first - 1) m.log.push(entry(m.log.length + 1, term, 0, 0));
        const entries = this.sizes.map((s, k) => entry(first + k, term, s, this.salt));
        await Promise.all(entries.map((e) => r.store.append([e])));
        m.log.push(...entries);
        checkSame(m, r);
    }
    toString(): string {
        return `append(${this.sizes.join(',')})`;
    }
}

class Truncate implements fc.AsyncCommand<Model, Real> {
    constructor(readonly back: number) {}
    check(m: Model): boolean {
        return m.log.length > Math.max(m.snapshotIndex, m.compacted);
    }
    async run(m: Model, r: Real): Promise<void> {
        const lowest = Math.max(m.snapshotIndex, m.compacted) + 1;
        const from = Math.max(lowest, m.log.length - this.back);
        await r.store.truncateSuffix(from);
        m.log.length = from - 1;
        checkSame(m, r);
    }
    toString(): string {
        return `truncate(-${this.back})`;
    }
}

class Compact implements fc.AsyncCommand<Model, Real> {
    constructor(readonly fraction: number, readonly keep: number) {}
    check(m: Model): boolean {
        return m.log.length > Math.max(m.snapshotIndex, m.compacted);
    }
    async run(m: Model, r: Real): Promise<void> {
        const lo = Math.max(m.snapshotIndex, m.compacted) + 1;
        const index = lo + Math.floor(this.fraction * (m.log.length - lo + 1));
        const e = m.log[index - 1] as Entry;
        const w = await r.store.snapshots.create({ index, term: e.term, configurationIndex: 0,
            configuration: { servers: [] } });
        await w.write(new Uint8Array(100).fill(index & 0xff));
        await w.commit();
        m.snapshotIndex = index;
        const upTo = Math.max(m.compacted, index - this.keep);
        await r.store.compactPrefix(upTo);
        m.compacted = upTo;
        assert.equal(r.store.firstIndex, upTo + 1);
        checkSame(m, r);
    }
    toString(): string {
        return `compact(${this.fraction.toFixed(2)}, keep ${this.keep})`;
    }
}

class SetHardState implements fc.AsyncCommand<Model, Real> {
    constructor(readonly bump: boolean, readonly vote: number) {}
    check(): boolean {
        return true;
    }
    async run(m: Model, r: Real): Promise<void> {
        const hs = { term: m.hardState.term + (this.bump ? 1 : 0), vote: BigInt(this.vote) };
        await r.store.setHardState(hs);
        m.hardState = hs;
        checkSame(m, r);
    }
    toString(): string {
        return `hardState(${this.bump ? '+1' : '='}, ${this.vote})`;
    }
}

class Read implements fc.AsyncCommand<Model, Real> {
    constructor(readonly a: number, readonly b: number) {}
    check(m: Model): boolean {
        return m.log.length > m.compacted;
    }
    async run(m: Model, r: Real): Promise<void> {
        const lo0 = m.compacted + 1;
        const span = m.log.length - lo0 + 1;
        const lo = lo0 + Math.floor(this.a * span);
        const hi = lo + Math.floor(this.b * (m.log.length - lo + 1));
        const got = await r.store.read(lo, hi);
        assert.equal(got.length, hi - lo);
        got.forEach((e, k) => {
            const w = m.log[lo + k - 1] as Entry;
            assert.equal(e.index, w.index);
            assert.equal(e.term, w.term);
            assert.deepEqual(Buffer.from(e.data), Buffer.from(w.data));
        });
    }
    toString(): string {
        return `read(${this.a.toFixed(2)}, ${this.b.toFixed(2)})`;
    }
}

class Restart implements fc.AsyncCommand<Model, Real> {
    check(): boolean {
        return true;
    }
    async run(m: Model, r: Real): Promise<void> {
        await r.store.close();
        await reopen(m, r);
    }
    toString(): string {
        return 'restart';
    }
}

class Crash implements fc.AsyncCommand<Model, Real> {
    constructor(readonly seed: number) {}
    check(): boolean {
        return true;
    }
    async run(m: Model, r: Real): Promise<void> {
        const old = r.store;
        r.fs = r.fs.crash(crashPlans.random(new SeededRandom(this.seed), 0.5, 0.3));
        await old.close();
        await reopen(m, r);
    }
    toString(): string {
        return `crash(${this.seed})`;
    }
}

const commands = [
    fc.tuple(fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1000, max: 5000 })),
        { minLength: 1, maxLength: 4 }), fc.nat(1000)).map(([s, salt]) => new Append(s, salt)),
    fc.integer({ min: 0, max: 6 }).map((b) => new Truncate(b)),
    fc.tuple(fc.double({ min: 0, max: 0.999, noNaN: true }), fc.integer({ min: 0, max: 3 }))
        .map(([f, k]) => new Compact(f, k)),
    fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3 })).map(([b, v]) => new SetHardState(b, v)),
    fc.tuple(fc.double({ min: 0, max: 0.999, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }))
        .map(([a, b]) => new Read(a, b)),
    fc.constant(new Restart()),
    fc.nat(1_000_000).map((s) => new Crash(s)),
];

test(`the log store matches an array model (seed ${SEED}, ${RUNS} runs)`, async () => {
    console.log(`seed ${SEED} (replay with SEED=${SEED})`);
    await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
            const fs = new SimFs({ dirs: ['/d'] });
            const { store } = await LogStore.open({ fs, dir: DIR, segmentBytes: SEGMENT_BYTES });
            const real: Real = { fs, store };
            const model: Model = { log: [], hardState: { term: 0, vote: 0n }, snapshotIndex: 0, compacted: 0 };
            try {
                await fc.asyncModelRun(() => ({ model, real }), cmds);
            } finally {
                await real.store.close();
            }
        }),
        { numRuns: RUNS, seed: SEED },
    );
});
