// Goal: the log store fail-stops on every injected I/O error and never retries an fsync; every
// flipped bit in synced data is reported as ERR_STORAGE_CORRUPT; every directory fsync in the
// store is needed (removing any one of them makes the crash checks fail); and the crash checks
// see a batch acknowledged before its O_DSYNC write made it durable.
// Method:
//  - EIO/ENOSPC: run a seeded workload once to count its file-system calls, then rerun it with a
//    fault at call N for every N, transient (that call only) and persistent (it and all later
//    calls). The store must reject with ERR_STORAGE, reject every later call, issue no further
//    write or sync, close cleanly, and recover (faults cleared, crash image) to a state allowed
//    by the model. Once per batch-write mode (harness.ts MODES: write + fdatasync, and the
//    O_DSYNC writeDurable, whose two halves are separate calls to fail), with the workload
//    starting with the harness's prelude (every kind of directory entry created).
//  - Bit flips: finish a workload cleanly, then flip each sampled bit of every synced byte
//    (metadata files, segment headers and batches, snapshot files) in its own copy of the disk
//    image and require open() to reject with ERR_STORAGE_CORRUPT.
//  - Mutation: for each fsyncDir call site of src/log, in both modes, rerun a smaller crash
//    enumeration (checkpoints at every operation and every acknowledgement; all pending ops
//    dropped, all applied) with that call skipped and require at least one violation. The
//    workload starts with the harness's prelude, which reaches every site whatever the seed.
//    Likewise for broken O_DSYNC writes (the store's bugs, played by the file system): a write
//    that is never made durable, one whose batch header alone is durable, one that resolves
//    before it is durable (the write takes an event-loop turn here, so that shows).
// Replay: SEED=<n> node --test build/test/log/faults.test.js

import { test } from 'node:test';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import type { FsFile, OpenMode } from '../../src/lib/fs.js';
import type { DurableWriter } from '../../src/lib/real-fs.js';
import { hasDurableWrite } from '../../src/lib/real-fs.js';
import { SimFs, crashPlans } from '../../src/lib/sim-fs.js';
import { StorageError } from '../../src/lib/errors.js';
import type { LogStore } from '../../src/log/log-store.js';
import { LogStore as Store } from '../../src/log/log-store.js';
import { SEGMENT_HEADER_BYTES, parseBatch } from '../../src/log/format.js';
import {
    DIR, MODES, MUTATING, Model, SEGMENT_BYTES, checkRecovered, recordCheckpoints, recover, runWorkload,
} from './harness.js';

const SEED = Number(process.env.SEED ?? 7);
const SYNCS = ['datasync', 'sync', 'fsyncDir', 'writeDurableSync'];
/** Workload steps of each fail-stop sweep (the sweep's cost grows with its square). */
const FAULT_STEPS = 50;

async function countOps(steps: number, durableWrites: boolean): Promise<number> {
    const fs = new SimFs({ dirs: ['/data'], durableWrites });
    await runWorkload(fs, new Model(), { random: new SeededRandom(SEED), steps, prelude: true });
    return fs.operationCount;
}

async function expectRejects(p: Promise<unknown>, what: string): Promise<void> {
    await assert.rejects(p, (e: unknown) => e instanceof Error, what);
}

for (const { name, durableWrites } of MODES) {
    test(`the store fail-stops on an I/O error at every operation (seed ${SEED}, ${name})`,
        () => failStopSweep(name, durableWrites));
}

async function failStopSweep(name: string, durableWrites: boolean): Promise<void> {
    console.log(`seed ${SEED} (replay with SEED=${SEED}), ${name}`);
    const steps = FAULT_STEPS;
    const total = await countOps(steps, durableWrites);
    let runs = 0;
    let durableFaults = 0;
    let failStops = 0;
    const problems: string[] = [];
    for (const persistent of [false, true]) {
        for (let n = 0; n < total; n++) {
            runs++;
            const fs = new SimFs({ dirs: ['/data'], durableWrites });
            fs.injectFault({ at: n, persistent, code: n % 7 === 3 ? 'ENOSPC' : 'EIO' });
            const model = new Model();
            let store: LogStore | undefined;
            const after: string[] = [];
            fs.onOp = (event) => {
                const fired = fs.faultFired;
                if (fired === undefined || event.index <= fired.index) return;
                // Never retry: no sync of a file whose sync failed, not even in the microtask
                // window before the store observed the failure.
                if (SYNCS.includes(fired.kind) && SYNCS.includes(event.kind) && event.path === fired.path) {
                    after.push(`retried ${event.kind} ${event.path}`);
                }
                // Once the store knows it failed, it does no more I/O at all. (A concurrent chain
                // may start one op between the failing call and the store observing the error.)
                const observed = store === undefined || (store as LogStore).failure !== undefined;
                if (observed && MUTATING.includes(event.kind) && event.kind !== 'open') {
                    after.push(`${event.kind} ${event.path}`);
                }
            };
            let error: unknown;
            try {
                await runWorkload(fs, model, { random: new SeededRandom(SEED), steps, prelude: true,
                    onStore: (s) => (store = s) });
            } catch (e) {
                error = e;
            }
            const where = `${persistent ? 'persistent' : 'transient'} fault at op ${n}`;
            if (fs.faultFired === undefined) {
                problems.push(`${where}: did not fire`);
                continue;
            }
            if (fs.faultFired.kind === 'writeDurable' || fs.faultFired.kind === 'writeDurableSync') durableFaults++;
            if (!(error instanceof StorageError) || error.code !== 'ERR_STORAGE') {
                problems.push(`${where}: workload ended with ${String(error)}`);
                continue;
            }
            if (store !== undefined) {
                const s = store as LogStore;
                if (s.state === 'open') problems.push(`${where}: store still open`);
                await expectRejects(s.append([{ index: s.lastIndex + 1, term: 99, type: 1, data: new Uint8Array(1) }]),
                    'append after failure');
                await expectRejects(s.setHardState({ term: 99, vote: 0n }), 'setHardState after failure');
                await expectRejects(s.read(s.firstIndex, s.firstIndex), 'read after failure');
                await expectRejects(s.snapshots.create({ index: 1, term: 1, configurationIndex: 0,
                    configuration: { servers: [] } }), 'snapshot after failure');
                await s.close();
                await s.close();
            }
            if (after.length > 0) problems.push(`${where}: I/O after the failure: ${after.slice(0, 3).join(', ')}`);
            fs.onOp = undefined;
            fs.clearFaults();
            for (const plan of [crashPlans.dropAll(), crashPlans.random(new SeededRandom(n), 0.5, 0.3)]) {
                try {
                    const r = await recover(fs.crashImage(plan));
                    for (const p of checkRecovered(r, model, model.acked, model.issued)) {
                        problems.push(`${where}: ${p}`);
                    }
                } catch (e) {
                    problems.push(`${where}: recovery failed: ${String(e)}`);
                }
            }
            failStops++;
            if (problems.length > 10) break;
        }
    }
    console.log(`fault runs ${runs} (ops per run ${total}, faults in a writeDurable ${durableFaults}), ` +
        `fail-stops ${failStops}, problems ${problems.length}`);
    assert.deepEqual(problems.slice(0, 10), []);
    assert.equal(failStops, runs);
    assert.ok(durableWrites ? durableFaults > 0 : durableFaults === 0, `${durableFaults} faults in a writeDurable`);
}

/** Byte ranges of synced data in each file of a cleanly closed store. */
function syncedRanges(fs: SimFs): { path: string; start: number; end: number }[] {
    const out: { path: string; start: number; end: number }[] = [];
    for (const path of fs.listFiles()) {
        const name = path.slice(path.lastIndexOf('/') + 1);
        const data = fs.peek(path);
        if (name.startsWith('open-')) {
            // Header and batches; the preallocated zeros after the last batch are not data.
            let pos = SEGMENT_HEADER_BYTES;
            for (;;) {
                const r = parseBatch(data, pos, data.length);
                if (r.kind !== 'ok') break;
                pos += r.bytes;
            }
            out.push({ path, start: 0, end: pos });
        } else {
            out.push({ path, start: 0, end: data.length });
        }
    }
    return out;
}

test(`every flipped bit in synced data is detected (seed ${SEED})`, async () => {
    const fs = new SimFs({ dirs: ['/data'] });
    await runWorkload(fs, new Model(), { random: new SeededRandom(SEED), steps: 120 });
    // A clean image: reopen once so that the layout is the steady one, then keep it open-ended
    // (an open segment with batches, closed segments, both metadata files, snapshots).
    const base = fs.crashImage(crashPlans.applyAll());
    const { store } = await Store.open({ fs: base, dir: DIR, segmentBytes: SEGMENT_BYTES });
    // The last batch of the open segment is the hard case (a damaged tail there could also be a
    // torn write); make it zero-heavy like an SQLite page, with a few set bytes.
    const sparse = new Uint8Array(1500);
    for (let i = 0; i < sparse.length; i += 97) sparse[i] = 1 << (i % 8);
    await store.append([{ index: store.lastIndex + 1, term: Math.max(1, store.hardState.term), type: 1,
        data: sparse }]);
    await store.close();
    const clean = base.crashImage(crashPlans.dropAll());
    await recover(clean.crashImage(crashPlans.dropAll()));

    const random = new SeededRandom(SEED).fork('flips');
    const ranges = syncedRanges(clean);
    const kinds = new Set(ranges.map((r) => r.path.replace(/.*\//, '').replace(/[0-9]+/g, 'N')));
    let flips = 0;
    let detected = 0;
    const misses: string[] = [];
    for (const r of ranges) {
        const bits = (r.end - r.start) * 8;
        // Every bit of small files; a seeded sample of 400 bits (plus the first and last 64)
        // of larger ones.
        const picks = bits <= 1024 ? Array.from({ length: bits }, (_, i) => i)
            : [...Array.from({ length: 64 }, (_, i) => i), ...Array.from({ length: 64 }, (_, i) => bits - 1 - i),
                ...Array.from({ length: 400 }, () => random.int(bits))];
        for (const bit of picks) {
            flips++;
            const image = clean.crashImage(crashPlans.dropAll());
            image.flipBit(r.path, r.start * 8 + bit);
            try {
                await recover(image);
                misses.push(`${r.path} bit ${r.start * 8 + bit}: not detected`);
            } catch (e) {
                if (e instanceof StorageError && e.code === 'ERR_STORAGE_CORRUPT') detected++;
                else misses.push(`${r.path} bit ${bit}: ${String(e)}`);
            }
        }
    }
    // Every 3rd bit of the last batch of the open segment.
    const open = ranges.find((r) => /open-\d+$/.test(r.path) && r.end > SEGMENT_HEADER_BYTES);
    assert.ok(open !== undefined, 'no open segment with batches in the image');
    const data = clean.peek(open.path);
    let last = SEGMENT_HEADER_BYTES;
    for (let pos = SEGMENT_HEADER_BYTES; pos < open.end;) {
        const r = parseBatch(data, pos, data.length);
        if (r.kind !== 'ok') break;
        last = pos;
        pos += r.bytes;
    }
    for (let bit = last * 8; bit < open.end * 8; bit += 3) {
        flips++;
        const image = clean.crashImage(crashPlans.dropAll());
        image.flipBit(open.path, bit);
        try {
            await recover(image);
            misses.push(`${open.path} bit ${bit} (last batch): not detected`);
        } catch (e) {
            if (e instanceof StorageError && e.code === 'ERR_STORAGE_CORRUPT') detected++;
            else misses.push(`${open.path} bit ${bit}: ${String(e)}`);
        }
    }
    console.log(`files ${ranges.length} (${[...kinds].join(', ')}), bit flips ${flips} (incl. every 3rd bit of the ` +
        `open segment's last batch), detected ${detected}`);
    assert.deepEqual(misses.slice(0, 10), []);
    assert.equal(detected, flips);
});

/**
 * Runs the workload (with the prelude) on `fs` and a small crash enumeration of it: checkpoints
 * at every operation and every acknowledgement, all pending ops dropped and all applied. Returns
 * the number of violations (stopping at the first checkpoint that has some).
 */
async function crashViolations(fs: SimFs, steps: number): Promise<number> {
    const model = new Model();
    const recorder = recordCheckpoints(fs, model, true);
    await runWorkload(fs, model, { random: new SeededRandom(SEED), steps, prelude: true });
    recorder.stop();
    const checkpoints = recorder.list;
    let violations = 0;
    for (const cp of checkpoints) {
        for (const plan of [crashPlans.dropAll(), crashPlans.applyAll()]) {
            try {
                violations += checkRecovered(await recover(SimFs.fromCheckpoint(cp.image, plan)), model, cp.acked,
                    cp.issued).length;
            } catch {
                violations++;
            }
        }
        if (violations > 0) return violations;
    }
    return violations;
}

/** A crash enumeration with one fsyncDir call site disabled; returns the violations found. */
async function violationsWithout(site: string, steps: number, durableWrites: boolean): Promise<number> {
    const fs = new SimFs({ dirs: ['/data'], durableWrites });
    const original = fs.fsyncDir.bind(fs);
    let skipped = 0;
    fs.fsyncDir = (path: string): Promise<void> => {
        if ((new Error().stack ?? '').includes(site)) {
            skipped++;
            return Promise.resolve();
        }
        return original(path);
    };
    const violations = await crashViolations(fs, steps);
    assert.ok(skipped > 0, `fsyncDir site ${site} never called`);
    return violations;
}

for (const { name, durableWrites } of MODES) {
    test(`removing any single fsyncDir call makes the crash checks fail (seed ${SEED}, ${name})`, async () => {
        // Every fsyncDir call in src/log, named by a function on its stack.
        const sites = ['ensureDir', 'prepareSegment', 'writeMetadata', 'snapshot-store'];
        const survivors: string[] = [];
        for (const site of sites) {
            const v = await violationsWithout(site, 100, durableWrites);
            console.log(`mutant without fsyncDir in ${site}: ${v > 0 ? 'killed' : 'SURVIVED'}`);
            if (v === 0) survivors.push(site);
        }
        assert.deepEqual(survivors, []);
    });
}

/**
 * Store bugs on the O_DSYNC path, played by the file system: each replaces writeDurable with a
 * broken version (the batch header is the first 32 bytes of what the store writes).
 */
const BROKEN_DURABLE_WRITES: Record<string, (file: FsFile & DurableWriter, position: number, data: Uint8Array)
    => Promise<void>> = {
    'acknowledged from the page cache (write, no sync)': (file, position, data) => file.write(position, data),
    'only the batch header durable': async (file, position, data) => {
        await file.writeDurable(position, data.subarray(0, 32));
        await file.write(position + 32, data.subarray(32));
    },
    'resolved before the write is durable': (file, position, data) => {
        file.writeDurable(position, data).catch(() => undefined);
        return Promise.resolve();
    },
};

test(`a broken O_DSYNC write makes the crash checks fail (seed ${SEED})`, async () => {
    const survivors: string[] = [];
    for (const [bug, broken] of Object.entries(BROKEN_DURABLE_WRITES)) {
        // The O_DSYNC write takes an event-loop turn, so that what runs meanwhile sees it in flight.
        const fs = new SimFs({ dirs: ['/data'], durableWrites: true, durableWriteWait: () => yieldTurn() });
        const open = fs.open.bind(fs);
        let calls = 0;
        fs.open = async (path: string, mode: OpenMode): Promise<FsFile> => {
            const file = await open(path, mode);
            if (!hasDurableWrite(file)) return file;
            const mutant: FsFile & DurableWriter = {
                path: file.path, read: (p, n) => file.read(p, n), write: (p, d) => file.write(p, d),
                append: (d) => file.append(d), truncate: (n) => file.truncate(n), datasync: () => file.datasync(),
                sync: () => file.sync(), size: () => file.size(), close: () => file.close(),
                writeDurable: (position, data) => {
                    calls++;
                    return broken(file, position, data);
                },
            };
            return mutant;
        };
        const v = await crashViolations(fs, 30);
        assert.ok(calls > 0, `${bug}: writeDurable never called`);
        console.log(`mutant writeDurable ${bug}: ${v > 0 ? 'killed' : 'SURVIVED'}`);
        if (v === 0) survivors.push(bug);
    }
    assert.deepEqual(survivors, []);
});
