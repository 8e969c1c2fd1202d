// Goal: the two FileSystem implementations keep the contract of src/lib/fs.ts, and SimFs loses
// exactly what a power cut may lose.
// Method: the same scripted calls on RealFs (a temp dir under os.tmpdir()) and SimFs; then
// SimFs-only checks of durability (unsynced data and unsynced directory entries vanish in a
// dropAll crash image), torn writes at sector granularity, reordering, fault injection and
// dead instances after crash().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileSystem } from '../../../src/lib/fs.js';
import { errorCode, joinPath, parentPath, baseName } from '../../../src/lib/fs.js';
import { BufferedFs, hasDurableWrite, realFs } from '../../../src/lib/real-fs.js';
import { LogStore } from '../../../src/log/log-store.js';
import { SimFs, crashPlans } from '../../../src/lib/sim-fs.js';
import { SeededRandom } from '../../../src/lib/random.js';

async function contract(fs: FileSystem, dir: string): Promise<void> {
    await fs.mkdir(joinPath(dir, 'sub'));
    const path = joinPath(dir, 'sub/a');
    const f = await fs.open(path, 'create');
    await f.write(0, Buffer.from('hello'));
    await f.append(Buffer.from(' world'));
    await f.write(20, Buffer.from('!'));
    assert.equal(await f.size(), 21);
    assert.equal(Buffer.from(await f.read(0, 11)).toString(), 'hello world');
    assert.deepEqual([...(await f.read(11, 9))], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal((await f.read(15, 100)).length, 6);
    await f.truncate(5);
    await f.datasync();
    await f.sync();
    await f.close();
    await f.close();
    await assert.rejects(fs.open(path, 'create'), (e) => errorCode(e) === 'EEXIST');
    await assert.rejects(fs.open(joinPath(dir, 'sub/missing'), 'read'), (e) => errorCode(e) === 'ENOENT');
    assert.equal(Buffer.from(await fs.readFile(path)).toString(), 'hello');
    const r = await fs.open(path, 'replace');
    assert.equal(await r.size(), 0);
    await r.close();
    await fs.rename(path, joinPath(dir, 'sub/b'));
    assert.deepEqual(await fs.readdir(joinPath(dir, 'sub')), ['b']);
    assert.deepEqual(await fs.stat(joinPath(dir, 'sub/b')), { size: 0, isDirectory: false });
    assert.equal((await fs.stat(joinPath(dir, 'sub'))).isDirectory, true);
    await fs.fsyncDir(joinPath(dir, 'sub'));
    await fs.unlink(joinPath(dir, 'sub/b'));
    await assert.rejects(fs.stat(joinPath(dir, 'sub/b')), (e) => errorCode(e) === 'ENOENT');
    await assert.rejects(fs.mkdir(joinPath(dir, 'sub')), (e) => errorCode(e) === 'EEXIST');
}

test('path helpers', () => {
    assert.equal(joinPath('/a', 'b'), '/a/b');
    assert.equal(joinPath('/a/', 'b'), '/a/b');
    assert.equal(parentPath('/a/b'), '/a');
    assert.equal(parentPath('/a'), '/');
    assert.equal(parentPath('a'), '.');
    assert.equal(baseName('/a/b'), 'b');
});

test('RealFs keeps the FileSystem contract', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tqlite-fs-'));
    try {
        await contract(realFs, dir);
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

test('SimFs keeps the FileSystem contract', async () => {
    await contract(new SimFs({ dirs: ['/t'] }), '/t');
});

test('SimFs: only synced data and synced directory entries survive a crash', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const f = await fs.open('/d/a', 'create');
    await f.write(0, new Uint8Array(10).fill(1));
    await f.datasync();
    // Data synced, but the creation is not: a crash may drop the file.
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), []);
    await fs.fsyncDir('/d');
    await f.write(10, new Uint8Array(10).fill(2));
    const lost = fs.crashImage(crashPlans.dropAll());
    assert.deepEqual([...lost.peek('/d/a')], Array(10).fill(1));
    const kept = fs.crashImage(crashPlans.applyAll());
    assert.equal(kept.peek('/d/a').length, 20);
    // The live instance is unaffected by building images.
    assert.equal(fs.peek('/d/a').length, 20);
    await fs.rename('/d/a', '/d/b');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/a']);
    assert.deepEqual(fs.crashImage(crashPlans.applyAll()).listFiles(), ['/d/b']);
    await fs.fsyncDir('/d');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/b']);
    await f.close();
});

test('SimFs: a directory not synced into its parent takes its files with it', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    await fs.mkdir('/d/x');
    const f = await fs.open('/d/x/a', 'create');
    await f.write(0, new Uint8Array(3));
    await f.sync();
    await fs.fsyncDir('/d/x');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), []);
    await fs.fsyncDir('/d');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/x/a']);
    await f.close();
});

test('SimFs: torn writes keep old content in unwritten sectors; subsets model reordering', async () => {
    const fs = new SimFs({ dirs: ['/d'], sectorBytes: 512 });
    const f = await fs.open('/d/a', 'create');
    await f.write(0, new Uint8Array(2048).fill(9));
    await f.sync();
    await fs.fsyncDir('/d');
    await f.write(100, new Uint8Array(1000).fill(7)); // touches sectors 0, 1, 2
    const pending = fs.pendingOps();
    assert.equal(pending.length, 1);
    assert.equal(pending[0]?.kind === 'write' && pending[0].sectors, 3);
    const torn = fs.crashImage(crashPlans.tear(0, 1)).peek('/d/a');
    assert.equal(torn[100], 7);
    assert.equal(torn[511], 7);
    assert.equal(torn[512], 9);
    const middleOnly = fs.crashImage(() => [false, true, false]).peek('/d/a');
    assert.equal(middleOnly[100], 9);
    assert.equal(middleOnly[600], 7);
    assert.equal(middleOnly[1050], 9);
    await f.write(3000, new Uint8Array(4).fill(1));
    // The later write persists without the earlier one.
    const reordered = fs.crashImage(crashPlans.dropOnly(0)).peek('/d/a');
    assert.equal(reordered[100], 9);
    assert.equal(reordered.length, 3004);
    // Random plans are a pure function of the seed.
    const a = fs.crashImage(crashPlans.random(new SeededRandom(3))).peek('/d/a');
    const b = fs.crashImage(crashPlans.random(new SeededRandom(3))).peek('/d/a');
    assert.deepEqual(a, b);
    await f.close();
});

test('SimFs: faults fire at the Nth matching call, once or persistently; crash kills the instance', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const f = await fs.open('/d/a', 'create');
    fs.injectFault({ at: 1, kinds: ['datasync'] });
    await f.datasync();
    await assert.rejects(f.datasync(), (e) => errorCode(e) === 'EIO');
    await f.datasync();
    fs.injectFault({ at: 0, kinds: ['write'], code: 'ENOSPC', persistent: true });
    await assert.rejects(f.write(0, new Uint8Array(1)), (e) => errorCode(e) === 'ENOSPC');
    await assert.rejects(f.write(0, new Uint8Array(1)), (e) => errorCode(e) === 'ENOSPC');
    fs.clearFaults();
    await f.write(0, new Uint8Array([5]));
    await f.sync();
    await fs.fsyncDir('/d');
    fs.flipBit('/d/a', 0);
    assert.equal(fs.crashImage(crashPlans.dropAll()).peek('/d/a')[0], 4);
    const survivor = fs.crash(crashPlans.dropAll());
    await assert.rejects(f.read(0, 1), (e) => errorCode(e) === 'ECRASHED');
    assert.deepEqual([...survivor.peek('/d/a')], [4]);
    await f.close();
});

test('BufferedFs keeps the FileSystem contract', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tqlite-bfs-'));
    try {
        await contract(new BufferedFs(), dir);
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

test('BufferedFs: a killed process (a fresh instance) loses exactly the unsynced data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tqlite-bfs-'));
    try {
        const before = new BufferedFs();
        const f = await before.open(join(dir, 'a'), 'create');
        await f.write(0, Buffer.from('synced'));
        await f.datasync();
        await f.write(6, Buffer.from(' lost'));
        await f.truncate(3);
        assert.equal(Buffer.from(await before.readFile(join(dir, 'a'))).toString(), 'syn');
        assert.equal(before.bufferedBytes, 5);
        // "kill -9": the next process sees the disk only.
        assert.equal(Buffer.from(await new BufferedFs().readFile(join(dir, 'a'))).toString(), 'synced');
        await f.sync();
        assert.equal(Buffer.from(await new BufferedFs().readFile(join(dir, 'a'))).toString(), 'syn');
        await f.close();

        // writeDurable (the log's path, as on RealFs): those bytes are on disk at once, and only
        // they; reads see them above an older buffered write of the same range.
        const g = await before.open(join(dir, 'b'), 'create');
        assert.ok(hasDurableWrite(g), 'BufferedFs files offer writeDurable');
        await g.write(0, Buffer.from('aaaa'));
        await g.writeDurable(2, Buffer.from('XY'));
        await g.write(5, Buffer.from('z'));
        assert.equal(Buffer.from(await before.readFile(join(dir, 'b'))).toString(), 'aaXY\0z');
        assert.equal(before.bufferedBytes, 5);
        assert.equal(Buffer.from(await new BufferedFs().readFile(join(dir, 'b'))).toString(), '\0\0XY');
        await g.datasync();
        assert.equal(Buffer.from(await new BufferedFs().readFile(join(dir, 'b'))).toString(), 'aaXY\0z');
        assert.equal(before.bufferedBytes, 0);
        await g.close();
        // With nothing else buffered (the log's open segment), durable writes leave no ops behind.
        const h = await before.open(join(dir, 'c'), 'create');
        assert.ok(hasDurableWrite(h));
        for (let i = 0; i < 3; i++) await h.writeDurable(i * 2, Buffer.from(`${i}${i}`));
        assert.equal(before.state(join(dir, 'c')).ops.length, 0);
        assert.equal(Buffer.from(await before.readFile(join(dir, 'c'))).toString(), '001122');
        assert.equal(Buffer.from(await new BufferedFs().readFile(join(dir, 'c'))).toString(), '001122');
        await h.close();

        // The log store on it: everything acknowledged survives the kill.
        const fs1 = new BufferedFs();
        const { store } = await LogStore.open({ fs: fs1, dir: join(dir, 'raft'), segmentBytes: 8192 });
        await store.setHardState({ term: 2, vote: 1n });
        await Promise.all(Array.from({ length: 20 }, (_, i) =>
            store.append([{ index: i + 1, term: 2, type: 1, data: new Uint8Array(700).fill(i) }])));
        const { store: again, state } = await LogStore.open({ fs: new BufferedFs(), dir: join(dir, 'raft'),
            segmentBytes: 8192 });
        assert.equal(state.entries.length, 20);
        assert.deepEqual(state.hardState, { term: 2, vote: 1n });
        await again.close();
        await store.close();
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

test('SimFs: renames across directories and of directories, durable once both parents are synced', async () => {
    const fs = new SimFs({ dirs: ['/d/a', '/d/b'] });
    const f = await fs.open('/d/a/x', 'create');
    await f.write(0, new Uint8Array([1]));
    await f.sync();
    await fs.fsyncDir('/d/a');
    await fs.rename('/d/a/x', '/d/b/x');
    await fs.fsyncDir('/d/b');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/a/x']);
    await fs.fsyncDir('/d/a');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/b/x']);
    // A whole directory: the snapshot-switch pattern (write tmp dir, sync, rename into place).
    await fs.mkdir('/d/tmp');
    const g = await fs.open('/d/tmp/db', 'create');
    await g.write(0, new Uint8Array([2]));
    await g.sync();
    await fs.fsyncDir('/d/tmp');
    await fs.rename('/d/tmp', '/d/snap');
    assert.deepEqual(await fs.readdir('/d/snap'), ['db']);
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/b/x']);
    await fs.fsyncDir('/d');
    assert.deepEqual(fs.crashImage(crashPlans.dropAll()).listFiles(), ['/d/b/x', '/d/snap/db']);
    await assert.rejects(fs.rename('/d/snap', '/d/snap/inner'), (e) => errorCode(e) === 'EINVAL');
    await f.close();
    await g.close();
});
