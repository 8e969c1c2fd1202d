// Goal: the simulator's disk (test/sim/disk.ts) is the real LogStore on SimFs: a write is
// acknowledged only once its syncs completed, a crash before that loses it (and is not a
// violation), a crash after it keeps it, and an injected EIO on a sync stops the store; all
// of it with write + fdatasync and with SimFs's O_DSYNC writes (a seed's durableWrites).
// Method: drive one SimDisk with a hand-cranked host: every sync waits in a list until the test
// completes it; microtasks are settled with one setImmediate turn. No randomness.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StorageError } from '../../src/lib/errors.js';
import { crashPlans } from '../../src/lib/sim-fs.js';
import { EntryType } from '../../src/raft/types.js';
import type { Entry } from '../../src/raft/types.js';
import { SimDisk } from './disk.js';
import type { DiskHost, PendingWrite } from './disk.js';

class Host implements DiskHost {
    readonly syncs: (() => void)[] = [];
    readonly failures: StorageError[] = [];
    syncLatency(_nodeId: number, alive: () => boolean): Promise<void> {
        return new Promise((resolve) => this.syncs.push(() => {
            if (alive()) resolve();
        }));
    }
    turn(): Promise<void> {
        return Promise.resolve();
    }
    onStorageFailure(_nodeId: number, error: StorageError): void {
        this.failures.push(error);
    }
    noteAsync(): void {}
    /** Settles, then completes syncs (and those they lead to) until none is waiting. */
    async completeSyncs(): Promise<void> {
        await settle();
        for (let round = 0; round < 50 && this.syncs.length > 0; round++) {
            for (const complete of this.syncs.splice(0)) complete();
            await settle();
        }
    }
}

function settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

function entry(index: number, term: number): Entry {
    return { index, term, type: EntryType.command, data: new Uint8Array([index, term, 1, 2, 3, 4, 5, 6]) };
}

function append(entries: Entry[]): PendingWrite {
    const last = entries[entries.length - 1];
    return {
        install: undefined, hardState: undefined, truncateFrom: undefined, entries,
        lastEntry: last === undefined ? undefined : { index: last.index, term: last.term }, after: [], take: undefined,
    };
}

async function freshDisk(host: Host, durableWrites = false): Promise<SimDisk> {
    const disk = new SimDisk(1, host, 4096, durableWrites);
    await disk.bootstrap({ term: 1, vote: 0n }, [entry(1, 1)]);
    const loaded = await disk.load();
    assert.deepEqual(loaded.entries.map((e) => e.index), [1]);
    return disk;
}

for (const durableWrites of [false, true]) {
    const mode = durableWrites ? 'O_DSYNC writes' : 'write + fdatasync';
    test(`a write is acknowledged only after its syncs; a crash before loses it, after keeps it (${mode})`,
        () => ackAfterSync(durableWrites));
    test(`an EIO on a sync stops the store and reports it once (${mode})`, () => eioStops(durableWrites));
}

async function ackAfterSync(durableWrites: boolean): Promise<void> {
    const host = new Host();
    const disk = await freshDisk(host, durableWrites);
    let durableCalls = 0;
    disk.fs.onOp = (event) => {
        if (event.kind === 'writeDurable') durableCalls++;
    };
    const first = append([entry(2, 1), entry(3, 1)]);
    let durable = false;
    void disk.persist(first).then(() => {
        durable = true;
    });
    await settle();
    assert.equal(durable, false, 'acknowledged before any sync completed');
    await host.completeSyncs();
    assert.equal(durable, true);
    disk.acknowledge(first);

    // A second write, cut off before its sync: lost, and the load says nothing is wrong.
    void disk.persist(append([entry(4, 1)])).catch(() => undefined);
    await settle();
    disk.crash(crashPlans.dropAll());
    assert.equal(durableCalls, durableWrites ? 2 : 0, 'the batches took the O_DSYNC path (or not)');
    const loaded = await disk.load();
    assert.deepEqual(loaded.entries.map((e) => e.index), [1, 2, 3]);
    assert.equal(disk.log.lastIndex, 3);
}

test('a load that misses an acknowledged entry is a safety failure', async () => {
    const host = new Host();
    const disk = await freshDisk(host);
    const write = append([entry(2, 1)]);
    const durable = disk.persist(write);
    await host.completeSyncs();
    await durable;
    disk.acknowledge(write);
    // Pretend the store had acknowledged one more entry than it wrote: the model is ahead.
    disk.log.append(entry(3, 1));
    disk.crash(crashPlans.dropAll());
    await assert.rejects(disk.load(), /acknowledged entry 3\/1 lost/);
});

async function eioStops(durableWrites: boolean): Promise<void> {
    const host = new Host();
    const disk = await freshDisk(host, durableWrites);
    disk.fs.injectFault({ at: 0, kinds: [durableWrites ? 'writeDurableSync' : 'datasync'], code: 'EIO' });
    const outcome = disk.persist(append([entry(2, 1)])).then(() => 'durable', (error: Error) => error.message);
    await host.completeSyncs();
    assert.match(await outcome, /EIO/);
    assert.equal(host.failures.length, 1);
    assert.notEqual(disk.store?.failure, undefined);
}
