// Goal: SimFs's model of an O_DSYNC write (writeDurable, option `durableWrites`) is the one its
// header states: durable, with the size needed to read it, when the call resolves; before that a
// pending write that a crash may drop or tear; nothing else of the file made durable; both
// halves visible to crash enumeration and fault injection; the mode kept by crash images.
// Method: small hand-written scenarios on one SimFs, checked through crash images built with the
// fixed plans of crashPlans (no randomness).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FsFile } from '../../src/lib/fs.js';
import { errorCode } from '../../src/lib/fs.js';
import { hasDurableWrite } from '../../src/lib/real-fs.js';
import type { DurableWriter } from '../../src/lib/real-fs.js';
import { SimFs, crashPlans } from '../../src/lib/sim-fs.js';
import type { SimCheckpoint, SimOpEvent } from '../../src/lib/sim-fs.js';

const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);

/** A file created and made durable (entry and content), opened for writing. */
async function durableFile(fs: SimFs, path: string, content: Uint8Array): Promise<FsFile & DurableWriter> {
    const file = await fs.open(path, 'create');
    await file.write(0, content);
    await file.datasync();
    await fs.fsyncDir('/d');
    assert.ok(hasDurableWrite(file));
    return file;
}

function survivor(fs: SimFs | SimCheckpoint, path: string, plan = crashPlans.dropAll()): Uint8Array {
    const image = fs instanceof SimFs ? fs.crashImage(plan) : SimFs.fromCheckpoint(fs, plan);
    return image.peek(path);
}

test('writeDurable exists only with durableWrites', async () => {
    const plain = new SimFs({ dirs: ['/d'] });
    const file = await plain.open('/d/f', 'create');
    assert.equal(hasDurableWrite(file), false);
    const durable = new SimFs({ dirs: ['/d'], durableWrites: true });
    assert.equal(hasDurableWrite(await durable.open('/d/f', 'create')), true);
    // Crash images keep the mode.
    const image = durable.crashImage(crashPlans.applyAll());
    assert.equal(image.durableWrites, true);
    assert.equal(hasDurableWrite(await image.open('/d/f', 'readWrite')), true);
    assert.equal(plain.crashImage(crashPlans.applyAll()).durableWrites, false);
});

test('resolved: the bytes and the size they need are durable; a crash during the call may drop or tear them',
    async () => {
        const fs = new SimFs({ dirs: ['/d'], durableWrites: true });
        const file = await durableFile(fs, '/d/f', bytes(512, 1));
        const events: SimOpEvent[] = [];
        let during: SimCheckpoint | undefined;
        fs.onOp = (event) => {
            events.push(event);
            if (event.kind === 'writeDurable') during = fs.checkpoint();
        };
        await file.writeDurable(256, bytes(1024, 2));
        fs.onOp = undefined;
        assert.deepEqual(events.map((e) => [e.kind, e.isSyncPoint]), [['writeDurable', false],
            ['writeDurableSync', true]]);
        assert.deepEqual(fs.pendingOps(), []);
        const after = survivor(fs, '/d/f');
        assert.equal(after.length, 1280);
        assert.deepEqual(after, new Uint8Array([...bytes(256, 1), ...bytes(1024, 2)]));

        // Between the halves the write is pending: lost, torn per sector, or complete.
        assert.ok(during !== undefined);
        assert.equal(during.pending.length, 1);
        assert.deepEqual(survivor(during, '/d/f'), bytes(512, 1));
        assert.deepEqual(survivor(during, '/d/f', crashPlans.applyAll()), after);
        const torn = survivor(during, '/d/f', crashPlans.tear(0, 1));
        assert.deepEqual(torn, new Uint8Array([...bytes(256, 1), ...bytes(256, 2)]));
        const op = during.pending[0];
        assert.ok(op?.kind === 'write' && op.sectors === 3);
        const middle = survivor(during, '/d/f', () => [false, true, false]);
        assert.deepEqual(middle, new Uint8Array([...bytes(512, 1), ...bytes(512, 2)]));
    });

test('no other pending write or truncation of the file becomes durable, nor a new file\'s entry', async () => {
    const fs = new SimFs({ dirs: ['/d'], durableWrites: true });
    const file = await durableFile(fs, '/d/f', bytes(4096, 1));
    await file.write(0, bytes(100, 7)); // before, elsewhere
    const inFlight = file.writeDurable(1024, bytes(512, 2));
    await file.write(3000, bytes(100, 8)); // issued while the O_DSYNC write is in flight
    await inFlight;
    await file.truncate(2048); // after
    // The earlier write keeps the durable one in the list, marked (see the next test).
    assert.deepEqual(fs.pendingOps().map((op) => (op.kind === 'write' && op.durable === true ? 'durable' : op.kind)),
        ['write', 'durable', 'write', 'truncate']);
    const image = survivor(fs, '/d/f');
    const want = bytes(4096, 1);
    want.set(bytes(512, 2), 1024);
    assert.deepEqual(image, want);

    // The entry of a file never fsynced in its directory is still lost.
    const fresh = await fs.open('/d/new', 'create');
    assert.ok(hasDurableWrite(fresh));
    await fresh.writeDurable(0, bytes(10, 3));
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/f']);
    const kept = fs.crashImage(crashPlans.applyAll());
    assert.deepEqual(kept.peek('/d/new'), bytes(10, 3));
});

test('an earlier pending write over the same bytes never overwrites the durable ones', async () => {
    const fs = new SimFs({ dirs: ['/d'], durableWrites: true });
    const file = await durableFile(fs, '/d/f', bytes(100, 1));
    await file.write(0, bytes(200, 5)); // pending, grows the file
    await file.writeDurable(50, bytes(100, 6));
    const pending = fs.pendingOps();
    assert.equal(pending.length, 2);
    assert.ok(pending[1]?.kind === 'write' && pending[1].durable === true);
    const durable = new Uint8Array([...bytes(50, 1), ...bytes(100, 6)]);
    // Whatever a plan says of the durable write (op 1), it is applied, after the earlier one.
    for (const plan of [crashPlans.dropAll(), crashPlans.prefix(0), crashPlans.dropOnly(0)]) {
        assert.deepEqual(survivor(fs, '/d/f', plan), durable);
    }
    const both = new Uint8Array([...bytes(50, 5), ...bytes(100, 6), ...bytes(50, 5)]);
    for (const plan of [crashPlans.applyAll(), crashPlans.prefix(1), crashPlans.dropOnly(1), crashPlans.tear(1, 0)]) {
        assert.deepEqual(survivor(fs, '/d/f', plan), both);
    }
    await file.datasync();
    assert.deepEqual(fs.pendingOps(), []);
    assert.deepEqual(survivor(fs, '/d/f'), both);
});

test('a fault fails either half: before anything was written, or with the write left pending', async () => {
    const fs = new SimFs({ dirs: ['/d'], durableWrites: true });
    const file = await durableFile(fs, '/d/f', bytes(10, 1));
    fs.injectFault({ at: 0, kinds: ['writeDurable'], code: 'ENOSPC' });
    await assert.rejects(file.writeDurable(0, bytes(600, 2)), (e: unknown) => errorCode(e) === 'ENOSPC');
    assert.equal(fs.faultFired?.kind, 'writeDurable');
    assert.deepEqual(fs.peek('/d/f'), bytes(10, 1));
    assert.deepEqual(fs.pendingOps(), []);

    const other = new SimFs({ dirs: ['/d'], durableWrites: true });
    const f2 = await durableFile(other, '/d/f', bytes(10, 1));
    other.injectFault({ at: 0, kinds: ['writeDurableSync'], code: 'EIO' });
    await assert.rejects(f2.writeDurable(0, bytes(600, 2)), (e: unknown) => errorCode(e) === 'EIO');
    assert.equal(other.faultFired?.kind, 'writeDurableSync');
    assert.deepEqual(other.peek('/d/f'), bytes(600, 2));
    assert.equal(other.pendingOps().length, 1);
    assert.deepEqual(survivor(other, '/d/f'), bytes(10, 1));
    assert.deepEqual(survivor(other, '/d/f', crashPlans.tear(0, 1)), bytes(512, 2));
});

test('a power cut while the write waits for the device: the call never completes', async () => {
    let release: (() => void) | undefined;
    const fs = new SimFs({ dirs: ['/d'], durableWrites: true,
        durableWriteWait: () => new Promise<void>((resolve) => (release = resolve)) });
    const file = await durableFile(fs, '/d/f', bytes(10, 1));
    const call = file.writeDurable(0, bytes(20, 2));
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(release !== undefined, 'waiting for the device');
    const after = fs.crash(crashPlans.dropAll());
    release();
    await assert.rejects(call, (e: unknown) => errorCode(e) === 'ECRASHED');
    assert.deepEqual(after.peek('/d/f'), bytes(10, 1));
});

test('the O_DSYNC descriptor is opened by path at the first call and stays with that file', async () => {
    const fs = new SimFs({ dirs: ['/d'], durableWrites: true });
    const file = await durableFile(fs, '/d/f', bytes(10, 1));
    await file.writeDurable(0, bytes(1, 2));
    await fs.rename('/d/f', '/d/g');
    await file.writeDurable(1, bytes(1, 3)); // bound already: still this file
    assert.deepEqual(fs.peek('/d/g').subarray(0, 3), new Uint8Array([2, 3, 1]));
    const late = await fs.open('/d/g', 'readWrite');
    assert.ok(hasDurableWrite(late));
    await fs.rename('/d/g', '/d/h');
    await assert.rejects(late.writeDurable(0, bytes(1, 4)), (e: unknown) => errorCode(e) === 'ENOENT');
    await late.close();
    await file.close();
    await assert.rejects(file.writeDurable(0, bytes(1, 4)), (e: unknown) => errorCode(e) === 'EBADF');
});
