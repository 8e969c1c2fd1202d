// Shared by the log's crash, fault and bit-flip tests: a seeded workload that drives a LogStore
// on a SimFs (appends alone and in concurrent groups, truncations, snapshots with compaction,
// snapshot installs, term/vote updates, restarts), a model of what each issued operation
// leaves, and the checker that compares a recovered store with the model.
//
// The model: states[k] is the logical state after the first k issued operations (states[0] is
// empty). Operations are acknowledged in issue order (the store's queue is FIFO), so at any
// instant `acked` ops are done and `issued` ops were started. A crash image may show the state
// of any j in [acked, issued] — never older (an acknowledged operation lost), never anything
// else (an entry never written, a torn mix).

import { crashPlans } from '../../src/lib/sim-fs.js';
import type { CrashPlan, PendingOp, SimFs, SimOpKind } from '../../src/lib/sim-fs.js';
import type { SeededRandom } from '../../src/lib/random.js';
import { LogStore } from '../../src/log/log-store.js';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../../src/raft/types.js';

export const DIR = '/data/raft';
export const SEGMENT_BYTES = 4096;

export interface SnapshotRecord {
    readonly meta: SnapshotMeta;
    readonly data: Uint8Array;
}

export interface ModelState {
    /** log[i - 1] is entry i (entries below a compaction stay; the checker ignores them). */
    readonly log: readonly Entry[];
    readonly hardState: HardState;
    readonly snapshot: SnapshotRecord | undefined;
}

export class Model {
    readonly states: ModelState[] = [{ log: [], hardState: { term: 0, vote: 0n }, snapshot: undefined }];
    acked = 0;
    /**
     * Called when `acked` grew, before the acknowledgement is passed on: a crash right then must
     * keep what was acknowledged (the crash test takes a checkpoint here too, so an
     * acknowledgement given before its write was durable shows even when no file-system call
     * comes in between).
     */
    onAck: (() => void) | undefined;

    get issued(): number {
        return this.states.length - 1;
    }

    get current(): ModelState {
        return this.states[this.states.length - 1] as ModelState;
    }

    /** Records an issued op and returns its number (1-based). */
    issue(next: Partial<ModelState>): number {
        this.states.push({ ...this.current, ...next });
        return this.issued;
    }

    ack(op: number): void {
        if (op <= this.acked) return;
        this.acked = op;
        this.onAck?.();
    }
}

export interface Checkpoint {
    readonly image: ReturnType<SimFs['checkpoint']>;
    readonly acked: number;
    readonly issued: number;
    readonly isSyncPoint: boolean;
    /** The operation just done, or 'ack' (an acknowledgement, see Model.onAck). */
    readonly kind: SimOpKind | 'ack';
}

/**
 * Records a checkpoint after every mutating operation on `fs` (with the op counts of `model`
 * at that instant), and with `acks` also at every acknowledgement (Model.onAck). Returns the
 * list it fills; `stop()` detaches both hooks.
 */
export function recordCheckpoints(fs: SimFs, model: Model, acks: boolean): { list: Checkpoint[]; stop: () => void } {
    const list: Checkpoint[] = [];
    const take = (kind: Checkpoint['kind'], isSyncPoint: boolean): void => {
        list.push({ image: fs.checkpoint(), acked: model.acked, issued: model.issued, isSyncPoint, kind });
    };
    fs.onOp = (event) => {
        if (MUTATING.includes(event.kind)) take(event.kind, event.isSyncPoint);
    };
    if (acks) model.onAck = () => take('ack', false);
    return {
        list,
        stop: () => {
            fs.onOp = undefined;
            model.onAck = undefined;
        },
    };
}

export const MUTATING: readonly SimOpKind[] = ['open', 'write', 'append', 'truncate', 'datasync', 'sync', 'rename',
    'unlink', 'mkdir', 'fsyncDir', 'writeDurable', 'writeDurableSync'];

/**
 * The two ways the store writes a batch, both tested: write + fdatasync (SimFs's default, as on
 * any file system without O_DSYNC writes), and one writeDurable (an O_DSYNC write, the RealFs
 * path), which SimFs models when built with `durableWrites`.
 */
export const MODES = [
    { name: 'write + fdatasync', durableWrites: false },
    { name: 'O_DSYNC writeDurable', durableWrites: true },
] as const;

function sameEntry(a: Entry, b: Entry): boolean {
    if (a.index !== b.index || a.term !== b.term || a.type !== b.type || a.data.length !== b.data.length) return false;
    for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
    return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
}

/** Does the recovered log equal state s's log above the recovered snapshot? */
function logMatches(entries: readonly Entry[], floor: number, s: ModelState): boolean {
    const last = s.log.length;
    const expected = Math.max(0, last - floor);
    if (entries.length !== expected) return false;
    for (let k = 0; k < entries.length; k++) {
        const want = s.log[floor + k] as Entry;
        if (!sameEntry(entries[k] as Entry, want)) return false;
    }
    return true;
}

export interface Recovered {
    readonly hardState: HardState;
    readonly snapshot: SnapshotMeta | undefined;
    readonly snapshotData: Uint8Array | undefined;
    readonly entries: readonly Entry[];
}

/** Opens the store on `fs`, reads everything back, closes. Throws what open throws. */
export async function recover(fs: SimFs): Promise<Recovered> {
    const { store, state } = await LogStore.open({ fs, dir: DIR, segmentBytes: SEGMENT_BYTES });
    try {
        let snapshotData: Uint8Array | undefined;
        if (state.snapshot !== undefined) {
            const reader = await store.snapshots.open(state.snapshot.index);
            const parts: Uint8Array[] = [];
            for (let c = await reader.read(); c !== undefined; c = await reader.read()) parts.push(c);
            await reader.close();
            snapshotData = Buffer.concat(parts);
        }
        // The in-memory index must agree with what was loaded.
        if (state.entries.length > 0) {
            const first = (state.entries[0] as Entry).index;
            const back = await store.read(first, first + state.entries.length);
            for (let k = 0; k < back.length; k++) {
                if (!sameEntry(back[k] as Entry, state.entries[k] as Entry)) {
                    throw new Error(`read() differs at ${first + k}`);
                }
            }
        }
        return { hardState: state.hardState, snapshot: state.snapshot, snapshotData, entries: state.entries };
    } finally {
        await store.close();
    }
}

/** Violations of the crash invariants for a recovered store, given acked/issued op counts. */
export function checkRecovered(r: Recovered, model: Model, acked: number, issued: number): string[] {
    const range = model.states.slice(acked, issued + 1);
    const problems: string[] = [];
    if (!range.some((s) => s.hardState.term === r.hardState.term && s.hardState.vote === r.hardState.vote)) {
        problems.push(`hard state ${r.hardState.term}/${r.hardState.vote} not in states ${acked}..${issued}`);
    }
    const snapOk = range.some((s) => {
        if (s.snapshot === undefined) return r.snapshot === undefined;
        return r.snapshot !== undefined && r.snapshot.index === s.snapshot.meta.index
            && r.snapshot.term === s.snapshot.meta.term && r.snapshotData !== undefined
            && sameBytes(r.snapshotData, s.snapshot.data)
            && JSON.stringify(r.snapshot.configuration, (_k, v) => (typeof v === 'bigint' ? String(v) : v))
                === JSON.stringify(s.snapshot.meta.configuration, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    });
    if (!snapOk) problems.push(`snapshot ${r.snapshot?.index ?? '-'} not old-complete or new-complete`);
    const floor = r.snapshot?.index ?? 0;
    if (!range.some((s) => logMatches(r.entries, floor, s))) {
        const got = r.entries.map((e) => `${e.index}/${e.term}`).join(' ');
        problems.push(`log (floor ${floor}) [${got}] matches no state ${acked}..${issued}`);
    }
    return problems;
}

export interface WorkloadOptions {
    readonly random: SeededRandom;
    readonly steps: number;
    /** Called with the store each time one is opened. */
    readonly onStore?: (store: LogStore) => void;
    /**
     * Start (on an empty disk) with a fixed sequence that reaches every directory fsync of
     * src/log whatever the seed, each followed by another file-system call before any other
     * fsyncDir: both term/vote files created, a snapshot installed (before any segment exists,
     * so no background preallocation syncs the directory meanwhile), then a first segment
     * opened. (The directory of the store is created by the first open.)
     */
    readonly prelude?: boolean;
}

function makeEntry(random: SeededRandom, index: number, term: number): Entry {
    const size = random.chance(0.1) ? random.range(1000, 3000) : random.range(0, 500);
    const data = new Uint8Array(size);
    if (random.chance(0.3)) {
        // Zero-heavy, like an SQLite page: a torn sector of it must still read as torn.
        for (let i = random.int(64); i < size; i += 1 + random.int(200)) data[i] = 1 << random.int(8);
    } else {
        for (let i = 0; i < size; i++) data[i] = random.int(256);
    }
    const type = (random.chance(0.9) ? 1 : random.pick([2, 3])) as EntryType;
    return { index, term, type, data };
}

const CONFIG = { servers: [{ id: 1n, address: '127.0.0.1:9001', role: 'voter' as const },
    { id: 2n, address: '127.0.0.1:9002', role: 'standby' as const }] };

/**
 * Runs the workload on `fs`, recording into `model`. Every store call is checked: a live store
 * must never reject (the fault tests catch rejections themselves via `tolerateFailure`).
 */
export async function runWorkload(fs: SimFs, model: Model, options: WorkloadOptions): Promise<void> {
    const random = options.random;
    let { store, state } = await LogStore.open({ fs, dir: DIR, segmentBytes: SEGMENT_BYTES });
    options.onStore?.(store);
    expectLoaded(state, model.current);
    let compacted = 0;
    const track = (op: number, p: Promise<unknown>): Promise<void> => p.then(() => model.ack(op));
    if (options.prelude === true) {
        if (model.issued !== 0) throw new Error('the prelude needs an empty disk');
        for (const hardState of [{ term: 1, vote: 1n }, { term: 2, vote: 0n }]) {
            await track(model.issue({ hardState }), store.setHardState(hardState));
        }
        const index = 2;
        await track(model.issue({}), store.truncateSuffix(index + 1));
        await writeSnapshot(store, model, random, { index, term: 2, configurationIndex: 1, configuration: CONFIG });
        const log = Array.from({ length: index }, (_, k): Entry => ({ index: k + 1, term: 2, type: 1,
            data: new Uint8Array(0) }));
        await track(model.issue({ log }), store.compactPrefix(index));
        compacted = index;
        const entries = [1, 2, 3].map((k) => makeEntry(random, index + k, 2));
        await track(model.issue({ log: [...log, ...entries] }), store.append(entries));
    }

    for (let step = 0; step < options.steps; step++) {
        const cur = model.current;
        const last = cur.log.length;
        const term = Math.max(1, cur.hardState.term);
        const snapIndex = cur.snapshot?.meta.index ?? 0;
        const roll = random.float();
        if (roll < 0.3 || last === 0) {
            // One append of 1-3 entries.
            const n = random.range(1, 3);
            const entries = Array.from({ length: n }, (_, k) => makeEntry(random, last + 1 + k, term));
            const op = model.issue({ log: [...cur.log, ...entries] });
            await track(op, store.append(entries));
        } else if (roll < 0.45) {
            // A group of concurrent appends: they should share batches (group commit).
            const waits: Promise<void>[] = [];
            const groups = random.range(2, 5);
            for (let g = 0; g < groups; g++) {
                const base = model.current.log.length;
                const entries = Array.from({ length: random.range(1, 2) },
                    (_, k) => makeEntry(random, base + 1 + k, term));
                const op = model.issue({ log: [...model.current.log, ...entries] });
                waits.push(track(op, store.append(entries)));
            }
            await Promise.all(waits);
        } else if (roll < 0.55) {
            const hardState: HardState = random.chance(0.5)
                ? { term: term + 1, vote: 0n }
                : { term, vote: BigInt(random.range(1, 3)) };
            const op = model.issue({ hardState });
            await track(op, store.setHardState(hardState));
        } else if (roll < 0.65) {
            // Conflict: truncate a suffix and append replacements (in one go, no await between).
            const lowest = Math.max(snapIndex, compacted) + 1;
            if (last < lowest) continue;
            const from = random.range(lowest, last);
            const kept = cur.log.slice(0, from - 1);
            const t1 = model.issue({ log: kept });
            const p1 = track(t1, store.truncateSuffix(from));
            const newTerm = term;
            const entries = Array.from({ length: random.range(0, 3) }, (_, k) => makeEntry(random, from + k, newTerm));
            if (entries.length > 0) {
                const t2 = model.issue({ log: [...kept, ...entries] });
                await Promise.all([p1, track(t2, store.append(entries))]);
            } else {
                await p1;
            }
        } else if (roll < 0.75) {
            // A local snapshot, then compaction (keeping a few trailing entries).
            if (last <= snapIndex) continue;
            const index = random.range(Math.max(snapIndex + 1, compacted + 1), last);
            if (index <= snapIndex) continue;
            const entry = cur.log[index - 1] as Entry;
            await writeSnapshot(store, model, random, { index, term: entry.term, configurationIndex: 1,
                configuration: CONFIG });
            const upTo = Math.max(compacted, index - random.range(0, 3));
            const op = model.issue({});
            await track(op, store.compactPrefix(upTo));
            compacted = upTo;
        } else if (roll < 0.8) {
            // Installing a snapshot from a leader that is ahead.
            const index = last + random.range(1, 4);
            const t1 = model.issue({});
            await track(t1, store.truncateSuffix(index + 1));
            await writeSnapshot(store, model, random, { index, term, configurationIndex: index - 1,
                configuration: CONFIG });
            const log = cur.log.slice();
            while (log.length < index) log.push({ index: log.length + 1, term, type: 1, data: new Uint8Array(0) });
            const op = model.issue({ log });
            await track(op, store.compactPrefix(index));
            compacted = index;
        } else if (roll < 0.85) {
            // Restart: everything acknowledged must come back exactly. (A store that failed in
            // the background stops the process instead, as a node would.)
            if (store.failure !== undefined) throw store.failure;
            await store.close();
            if (store.failure !== undefined) throw store.failure;
            ({ store, state } = await LogStore.open({ fs, dir: DIR, segmentBytes: SEGMENT_BYTES }));
            options.onStore?.(store);
            expectLoaded(state, model.current);
            const s = model.current.snapshot?.meta.index ?? 0;
            compacted = Math.max(s, 0);
        } else {
            // A catch-up read of a random range.
            const lo = Math.max(store.firstIndex, 1);
            if (last < lo) continue;
            const a = random.range(lo, last);
            const b = random.range(a, last) + 1;
            const got = await store.read(a, b);
            for (const e of got) {
                if (!sameEntry(e, model.current.log[e.index - 1] as Entry)) {
                    throw new Error(`read mismatch at ${e.index}`);
                }
            }
        }
    }
    if (store.failure !== undefined) throw store.failure;
    await store.close();
    // Background work (preallocation) may fail while closing: still a failure to report.
    if (store.failure !== undefined) throw store.failure;
}

async function writeSnapshot(store: LogStore, model: Model, random: SeededRandom, meta: SnapshotMeta): Promise<void> {
    const parts: Uint8Array[] = [];
    const writer = await store.snapshots.create(meta);
    for (let c = random.range(1, 3); c > 0; c--) {
        const chunk = new Uint8Array(random.range(1, 1500));
        for (let i = 0; i < chunk.length; i++) chunk[i] = random.int(256);
        parts.push(chunk);
        await writer.write(chunk);
    }
    const op = model.issue({ snapshot: { meta, data: Buffer.concat(parts) } });
    await writer.commit();
    model.ack(op);
}

/** After a clean restart the loaded state must be exactly the acknowledged one. */
export function expectLoaded(state: { hardState: HardState; snapshot: SnapshotMeta | undefined; entries: Entry[] },
    s: ModelState): void {
    const floor = state.snapshot?.index ?? 0;
    if (state.hardState.term !== s.hardState.term || state.hardState.vote !== s.hardState.vote) {
        throw new Error('restart lost the hard state');
    }
    if ((state.snapshot?.index ?? 0) !== (s.snapshot?.meta.index ?? 0)) throw new Error('restart lost the snapshot');
    if (!logMatches(state.entries, floor, s)) throw new Error('restart changed the log');
}

/** The crash variants for one checkpoint. */
export function variants(cp: Checkpoint, random: SeededRandom): CrashPlan[] {
    const pending: readonly PendingOp[] = cp.image.pending;
    const n = pending.length;
    const plans: CrashPlan[] = [crashPlans.dropAll(), crashPlans.applyAll()];
    if (n === 0) return plans;
    for (let k = 1; k < n; k++) plans.push(crashPlans.prefix(k));
    for (let i = 0; i < n; i++) plans.push(crashPlans.dropOnly(i));
    for (let i = n - 1; i >= 0; i--) {
        const op = pending[i] as PendingOp;
        if (op.kind !== 'write') continue;
        for (let s = 1; s < op.sectors; s++) plans.push(crashPlans.tear(i, s));
        break;
    }
    // An acknowledgement changes no file: its images are those of the op before, with the same
    // fixed plans, checked against the new range; random ones would only add more of the same.
    const randoms = cp.kind === 'ack' ? 0 : cp.isSyncPoint ? 16 : 6;
    for (let r = 0; r < randoms; r++) plans.push(crashPlans.random(random.fork(`r${r}`), random.float(), 0.3));
    return plans;
}

