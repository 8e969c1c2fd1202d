// Goal: the append fast path changes nothing on disk. Batches are encoded in one whitening +
// CRC pass and written with one O_DSYNC write on the real file system; the bytes must be the
// format-version-1 bytes of docs/disk-format.md, and a durable write must read back like a
// write + fdatasync.
// Method: a fixed batch (payloads of 0, 1, 7, 4096, 70,000 bytes and one at an odd byte
// offset, so the word path, the byte path and the 64 KiB key wrap all run) against its
// length, CRC and first bytes as written by the encoder before the fast path, also when
// encoded into a reused scratch buffer that held other bytes; RealFs's
// writeDurable against reads through the ordinary handle and a fresh open; the store on RealFs
// (which then writes through writeDurable) and on a file system without it, reloaded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../src/lib/crc32c.js';
import type { FileSystem, FsFile } from '../../src/lib/fs.js';
import { hasDurableWrite, realFs } from '../../src/lib/real-fs.js';
import { encodeBatch, parseBatch } from '../../src/log/format.js';
import { LogStore } from '../../src/log/log-store.js';
import type { Entry, EntryType } from '../../src/raft/types.js';

function fixedBatch(): Entry[] {
    const entries: Entry[] = [0, 1, 7, 4096, 70_000].map((length, i) => ({
        index: 41 + i, term: 3 + (i >> 1), type: (1 + (i % 3)) as EntryType,
        data: Uint8Array.from({ length }, (_, k) => (k * 31 + i) & 0xff),
    }));
    const backing = Uint8Array.from({ length: 101 }, (_, k) => k);
    entries.push({ index: 46, term: 9, type: 1, data: backing.subarray(3, 100) });
    return entries;
}

test('a batch encodes to the same bytes as before the one-pass encoder', () => {
    const entries = fixedBatch();
    const out = encodeBatch(41, entries);
    assert.equal(out.length, 74_344);
    assert.equal(crc32c(out), 0x08b7b63b);
    assert.equal(Buffer.from(out.subarray(0, 48)).toString('hex'), 'e7803b761b6702cb7d2dadbc4f6ac483a4cea359'
        + 'e92c88681d82b42d9deca404b485d59d4e45307ee43bc11277a06792');
    const marker = encodeBatch(7, []);
    assert.equal(Buffer.from(marker).toString('hex'),
        '4b3a6eaf00000000532dadbc4f6ac483a2cea359e92c886855a0b52d9deca404');
    const parsed = parseBatch(out, 0, out.length);
    assert.equal(parsed.kind, 'ok');
    if (parsed.kind === 'ok') assert.deepEqual(parsed.entries.map((e) => e.length), entries.map((e) => e.data.length));
});

test('encoding into a reused scratch buffer gives the same bytes, in a view whose slice() copies', () => {
    const scratch = Buffer.allocUnsafeSlow(256 * 1024).fill(0xa5);
    const big = encodeBatch(41, fixedBatch(), scratch);
    assert.equal(crc32c(big), 0x08b7b63b);
    // A smaller batch over the bytes of a bigger one: padding and reserved bytes are zeros again.
    const small = [{ index: 7, term: 2, type: 1 as EntryType, data: Uint8Array.from([1, 2, 3]) }];
    const reused = encodeBatch(7, small, scratch);
    assert.deepEqual(Buffer.from(reused), Buffer.from(encodeBatch(7, small)));
    assert.equal(reused.buffer, scratch.buffer);
    assert.ok(!Buffer.isBuffer(reused), 'a Buffer would make slice() a view (SimFs and BufferedFs keep slices)');
    const kept = reused.slice();
    encodeBatch(9, [{ index: 9, term: 5, type: 1, data: new Uint8Array(40).fill(8) }], scratch);
    assert.deepEqual(Buffer.from(kept), Buffer.from(encodeBatch(7, small)));
    // Too small a scratch buffer: a fresh buffer.
    assert.notEqual(encodeBatch(41, fixedBatch(), Buffer.alloc(64)).buffer, scratch.buffer);
});

test('RealFs writeDurable writes like write + datasync and closes with the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tqlite-durable-'));
    try {
        const path = join(dir, 'f');
        const file = await realFs.open(path, 'create');
        assert.ok(hasDurableWrite(file));
        await file.write(0, new Uint8Array(64));
        await file.datasync();
        await file.writeDurable(8, Buffer.from('durable'));
        await file.writeDurable(60, Buffer.from('past the end'));
        assert.equal(await file.size(), 72);
        assert.equal(Buffer.from(await file.read(8, 7)).toString(), 'durable');
        await file.close();
        await file.close();
        await assert.rejects(file.writeDurable(0, new Uint8Array(1)));
        const again = Buffer.from(await realFs.readFile(path));
        assert.equal(again.subarray(8, 15).toString(), 'durable');
        assert.equal(again.subarray(60).toString(), 'past the end');
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

/** realFs without writeDurable: the store falls back to write + datasync. */
function withoutDurableWrite(fs: FileSystem): FileSystem {
    return {
        open: async (path, mode) => {
            const f = await fs.open(path, mode);
            const plain: FsFile = {
                path: f.path, read: (p, n) => f.read(p, n), write: (p, d) => f.write(p, d), append: (d) => f.append(d),
                truncate: (n) => f.truncate(n), datasync: () => f.datasync(), sync: () => f.sync(), size: () => f.size(),
                close: () => f.close(),
            };
            return plain;
        },
        readFile: (p) => fs.readFile(p), rename: (a, b) => fs.rename(a, b), unlink: (p) => fs.unlink(p),
        mkdir: (p) => fs.mkdir(p), readdir: (p) => fs.readdir(p), stat: (p) => fs.stat(p),
        fsyncDir: (p) => fs.fsyncDir(p),
    };
}

for (const [name, fs] of [['writeDurable', realFs], ['write + datasync', withoutDurableWrite(realFs)]] as const) {
    test(`the store on the real file system with ${name}: appends across segments reload`, async () => {
        const dir = await mkdtemp(join(tmpdir(), 'tqlite-durable-'));
        try {
            const options = { fs, dir: join(dir, 'raft'), segmentBytes: 64 * 1024 };
            let { store } = await LogStore.open(options);
            const entry = (index: number): Entry => ({ index, term: 1, type: 1, data: new Uint8Array(3000).fill(index) });
            // One group-committed batch, then one batch per entry (about 20 per segment).
            await Promise.all(Array.from({ length: 30 }, (_, i) => store.append([entry(i + 1)])));
            for (let i = 31; i <= 60; i++) await store.append([entry(i)]);
            await store.truncateSuffix(51);
            await store.append([entry(51)]);
            await store.close();
            let state;
            ({ store, state } = await LogStore.open(options));
            assert.equal(state.entries.length, 51);
            assert.ok(state.entries.every((e, i) => e.index === i + 1 && e.data[0] === ((i + 1) & 0xff)));
            assert.deepEqual((await store.read(20, 22)).map((e) => e.data[2999]), [20, 21]);
            await store.close();
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
    });
}
