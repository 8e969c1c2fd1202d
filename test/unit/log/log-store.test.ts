// Goal: the log store's individual behaviours: the batch and metadata encodings, single-bit
// flip classification, group commit, truncation and compaction, load repairs (torn tail cut,
// open segments closed, temporary files removed), typed corruption errors for damaged synced
// data (closed segments, metadata, snapshots), metadata alternation, fail-stop and lifecycle.
// Method: small scripted scenarios on SimFs (and one on the real file system in a temp dir),
// inspecting files and the store's answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimFs, crashPlans } from '../../../src/lib/sim-fs.js';
import { realFs } from '../../../src/lib/real-fs.js';
import { StorageError } from '../../../src/lib/errors.js';
import { crc32c } from '../../../src/lib/crc32c.js';
import { LogStore } from '../../../src/log/log-store.js';
import {
    decodeMetadata, encodeBatch, encodeMetadata, isSingleBitFlip, parseBatch,
} from '../../../src/log/format.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';

const DIR = '/d/raft';

function e(index: number, term = 1, size = 10): Entry {
    return { index, term, type: 1, data: new Uint8Array(size).fill(index & 0xff) };
}

async function openStore(fs: SimFs, segmentBytes = 4096): ReturnType<typeof LogStore.open> {
    return LogStore.open({ fs, dir: DIR, segmentBytes });
}

function isCorrupt(error: unknown): boolean {
    return error instanceof StorageError && error.code === 'ERR_STORAGE_CORRUPT';
}

const META: SnapshotMeta = {
    index: 3, term: 1, configurationIndex: 1,
    configuration: { servers: [{ id: 7n, address: 'h:1', role: 'voter' }, { id: 8n, address: 'h:2', role: 'spare' }] },
};

test('batches round-trip; a marker batch has no entries', () => {
    const bytes = encodeBatch(5, [e(5, 2, 3), e(6, 2, 0), e(7, 3, 17)]);
    const r = parseBatch(bytes, 0, bytes.length);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.firstIndex, 5);
    assert.deepEqual(r.entries.map((x) => [x.term, x.length]), [[2, 3], [2, 0], [3, 17]]);
    const marker = encodeBatch(9, []);
    assert.equal(marker.length, 32);
    assert.deepEqual(parseBatch(marker, 0, 32), { kind: 'ok', firstIndex: 9, bytes: 32, entries: [] });
    assert.equal(parseBatch(new Uint8Array(64), 0, 64).kind, 'end');
});

test('every single flipped bit is classified as a flip; torn sectors are not', () => {
    const bytes = Buffer.from(encodeBatch(1, [e(1, 1, 700), e(2, 1, 300)]));
    for (let bit = 0; bit < bytes.length * 8; bit += 7) {
        const copy = Buffer.from(bytes);
        copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
        const r = parseBatch(copy, 0, copy.length);
        assert.equal(r.kind === 'bad' && r.bitFlip, true, `bit ${bit}`);
    }
    const torn = Buffer.from(bytes);
    torn.fill(0, 512, 1024);
    const r = parseBatch(torn, 0, torn.length);
    assert.equal(r.kind === 'bad' && !r.bitFlip, true);
    // Zero-heavy payloads (SQLite pages): a torn sector whose new content had a single set bit
    // is still a tear, thanks to whitening.
    const sparse = Buffer.from(encodeBatch(1, [{ index: 1, term: 1, type: 1, data: new Uint8Array(2000) }]));
    const tornSparse = Buffer.from(sparse);
    tornSparse.fill(0, 1024, 1536);
    const t = parseBatch(tornSparse, 0, tornSparse.length);
    assert.equal(t.kind === 'bad' && !t.bitFlip, true);
    const data = Buffer.from('some bytes of data, long enough');
    assert.equal(isSingleBitFlip(data, 0, data.length, crc32c(data) ^ 0x10), true);
    assert.equal(isSingleBitFlip(data, 0, data.length, crc32c(data) ^ 0x11), false);
});

test('metadata encoding round-trips and rejects damage', () => {
    const bytes = encodeMetadata({ version: 3, hardState: { term: 9, vote: 2n ** 63n } });
    assert.deepEqual(decodeMetadata(bytes),
        { kind: 'ok', record: { version: 3, hardState: { term: 9, vote: 2n ** 63n } } });
    assert.equal(decodeMetadata(new Uint8Array(0)).kind, 'unwritten');
    assert.equal(decodeMetadata(bytes.slice(0, 40)).kind, 'corrupt');
    const flipped = Buffer.from(bytes);
    flipped[20] = (flipped[20] as number) ^ 1;
    assert.equal(decodeMetadata(flipped).kind, 'corrupt');
});

test('group commit: concurrent appends share one write and one fdatasync', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs, 1 << 20);
    await store.append([e(1)]);
    let syncs = 0;
    fs.onOp = (ev) => {
        if (ev.kind === 'datasync') syncs++;
    };
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.append([e(i + 2)])));
    fs.onOp = undefined;
    // The first append goes alone; everything that queued behind it forms the next batch.
    assert.ok(syncs <= 2, `${syncs} fdatasyncs for 100 appends`);
    assert.equal(store.lastIndex, 101);
    await store.close();
});

test('truncation, compaction, reads and reload', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    let { store, state } = await openStore(fs);
    assert.deepEqual(state, { hardState: { term: 0, vote: 0n }, snapshot: undefined, entries: [] });
    for (let i = 1; i <= 30; i++) await store.append([e(i, 1, 300)]);
    await Promise.all([store.truncateSuffix(20), store.append([e(20, 2), e(21, 2)])]);
    assert.equal(store.lastIndex, 21);
    assert.equal(store.term(20), 2);
    assert.deepEqual((await store.read(19, 22)).map((x) => x.term), [1, 2, 2]);
    await store.truncateSuffix(25); // past the end: nothing to do
    // A call that breaks the contract is refused without failing the store.
    await assert.rejects(store.append([e(23)]), (err: unknown) => (err as { code?: string }).code === 'ERR_ASSERTION');
    assert.equal(store.state, 'open');
    const w = await store.snapshots.create(META);
    await w.write(new Uint8Array(10000).fill(1));
    await w.write(new Uint8Array(5).fill(2));
    await w.commit();
    await store.compactPrefix(2);
    assert.equal(store.firstIndex, 3);
    await assert.rejects(store.read(1, 3));
    await store.close();
    ({ store, state } = await openStore(fs));
    assert.equal(state.snapshot?.index, 3);
    assert.deepEqual(state.snapshot?.configuration, META.configuration);
    assert.deepEqual(state.entries.map((x) => `${x.index}/${x.term}`),
        [...Array.from({ length: 16 }, (_, i) => `${i + 4}/1`), '20/2', '21/2']);
    const reader = await store.snapshots.open();
    let total = 0;
    for (let c = await reader.read(); c !== undefined; c = await reader.read()) total += c.length;
    await reader.close();
    assert.equal(total, 10005);
    await store.close();
});

test('persist() writes a Ready\'s hard state, truncation and entries in order', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    await store.persist({ hardState: { term: 1, vote: 1n }, entries: [e(1), e(2), e(3)] });
    const p = store.persist({ hardState: { term: 2, vote: 0n }, truncateFrom: 2, entries: [e(2, 2)] });
    const q = store.persist({ entries: [e(3, 2)] });
    await Promise.all([p, q]);
    assert.deepEqual(store.hardState, { term: 2, vote: 0n });
    assert.deepEqual((await store.read(1, 4)).map((x) => x.term), [1, 2, 2]);
    await store.close();
});

test('snapshot install: truncate, commit, compact past the end, continue after it', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    let { store } = await openStore(fs);
    await store.append([e(1), e(2)]);
    const meta = { ...META, index: 10, term: 4 };
    await store.truncateSuffix(11);
    const w = await store.snapshots.create(meta);
    await w.write(new Uint8Array(3));
    await w.commit();
    await store.compactPrefix(10);
    assert.equal(store.lastIndex, 10);
    await store.append([e(11, 4)]);
    await store.close();
    let state;
    ({ store, state } = await openStore(fs));
    assert.deepEqual(state.entries.map((x) => x.index), [11]);
    await store.close();
});

test('only the two newest snapshots are kept', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    for (let i = 1; i <= 4; i++) {
        const w = await store.snapshots.create({ ...META, index: i });
        await w.write(new Uint8Array(1));
        await w.commit();
    }
    assert.deepEqual(store.snapshots.list().map((m) => m.index), [4, 3]);
    assert.deepEqual(fs.listFiles().filter((f) => f.includes('snapshot')).length, 2);
    const aborted = await store.snapshots.create({ ...META, index: 5 });
    await aborted.write(new Uint8Array(1));
    await aborted.abort();
    assert.equal(fs.listFiles().some((f) => f.includes('tmp-')), false);
    await store.close();
});

test('load cuts a torn tail, closes open segments and removes temporary files', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    await store.append([e(1, 1, 100)]);
    await store.append([e(2, 1, 1500)]);
    const w = await store.snapshots.create(META);
    await w.write(new Uint8Array(10));
    // The second append's batch spans several sectors; tear it.
    const pendingBefore = fs.pendingOps().length;
    void store.append([e(3, 1, 2000)]);
    await Promise.resolve();
    const tornAt = fs.pendingOps().findIndex((op, i) => i >= pendingBefore && op.kind === 'write' && op.sectors > 2);
    const image = fs.crashImage((op, i) => (i === tornAt ? [true, false, true, false, false]
        .slice(0, op.kind === 'write' ? op.sectors : 0) : 'apply'));
    await store.close().catch(() => undefined);
    const { store: s2, state } = await openStore(image);
    assert.deepEqual(state.entries.map((x) => x.index), [1, 2]);
    const names = image.listFiles().map((f) => f.slice(f.lastIndexOf('/') + 1));
    assert.equal(names.some((n) => n.startsWith('tmp-')), false);
    assert.equal(names.some((n) => n.startsWith('open-')), false);
    assert.ok(names.includes('0000000000000001-0000000000000002'));
    await s2.append([e(3, 1, 10)]);
    await s2.close();
    const { state: again, store: s3 } = await openStore(image);
    assert.deepEqual(again.entries.map((x) => x.index), [1, 2, 3]);
    await s3.close();
});

test('damage to synced data is ERR_STORAGE_CORRUPT, never a silent truncation', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    await store.setHardState({ term: 2, vote: 1n });
    await store.setHardState({ term: 3, vote: 0n });
    for (let i = 1; i <= 12; i++) await store.append([e(i, 1, 600)]);
    const w = await store.snapshots.create(META);
    await w.write(new Uint8Array(50).fill(3));
    await w.commit();
    await store.close();
    const clean = fs.crashImage(crashPlans.dropAll());
    const closed = clean.listFiles().find((f) => /\/\d{16}-\d{16}$/.test(f)) as string;
    const cases: [string, (x: SimFs) => Promise<void> | void][] = [
        ['closed segment byte', (x) => x.flipBit(closed, 8 * 200 + 3)],
        ['closed segment cut short', async (x) => {
            const f = await x.open(closed, 'readWrite');
            await f.truncate(1000);
            await f.close();
        }],
        ['older metadata file', (x) => x.flipBit(`${DIR}/metadata1`, 8 * 30)],
        ['newest metadata file', (x) => x.flipBit(`${DIR}/metadata2`, 8 * 30)],
        ['snapshot frame', (x) => {
            const path = `${DIR}/snapshot-0000000000000003-0000000000000001`;
            x.flipBit(path, 8 * (x.peek(path).length - 40));
        }],
    ];
    for (const [what, damage] of cases) {
        const image = clean.crashImage(crashPlans.dropAll());
        await damage(image);
        await assert.rejects(openStore(image), isCorrupt, what);
    }
    // Equal metadata versions cannot happen: corruption.
    const image = clean.crashImage(crashPlans.dropAll());
    const f = await image.open(`${DIR}/metadata1`, 'readWrite');
    await f.write(0, encodeMetadata({ version: 2, hardState: { term: 3, vote: 0n } }));
    await f.close();
    await assert.rejects(openStore(image), isCorrupt);
});

test('metadata alternates files and survives losing the newest write', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    await store.setHardState({ term: 1, vote: 1n });
    await store.setHardState({ term: 2, vote: 2n });
    await store.setHardState({ term: 3, vote: 3n });
    assert.deepEqual(store.hardState, { term: 3, vote: 3n });
    // The write of version 4 to metadata2 is not synced yet: a crash keeps version 3 intact.
    const p = store.setHardState({ term: 4, vote: 0n });
    const image = fs.crashImage(crashPlans.dropAll());
    await p;
    await store.close();
    const { state, store: s2 } = await openStore(image);
    assert.deepEqual(state.hardState, { term: 3, vote: 3n });
    await s2.close();
    const { state: s4, store: s3 } = await openStore(fs);
    assert.deepEqual(s4.hardState, { term: 4, vote: 0n });
    await s3.close();
});

test('fail-stop: an fsync error fails the store and every later call; close stays idempotent', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    await store.append([e(1)]);
    fs.injectFault({ at: 0, kinds: ['datasync'] });
    const a = store.append([e(2)]);
    const b = store.append([e(3)]);
    await assert.rejects(a, (err) => err instanceof StorageError && err.code === 'ERR_STORAGE');
    await assert.rejects(b, (err) => err instanceof StorageError && err.code === 'ERR_STORAGE');
    await assert.rejects(store.setHardState({ term: 1, vote: 0n }), StorageError);
    assert.equal(store.state, 'failed');
    await Promise.all([store.close(), store.close()]);
    await assert.rejects(store.append([e(2)]));
});

test('close is idempotent and later calls reject with ERR_CLOSED', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await openStore(fs);
    const pending = store.append([e(1)]);
    const c1 = store.close();
    assert.equal(store.close(), c1);
    await pending;
    await c1;
    await assert.rejects(store.append([e(2)]), (err: unknown) => (err as { code?: string }).code === 'ERR_CLOSED');
});

test('the store works on the real file system', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tqlite-log-'));
    try {
        let { store } = await LogStore.open({ fs: realFs, dir: join(dir, 'raft'), segmentBytes: 64 * 1024 });
        await store.setHardState({ term: 1, vote: 1n });
        await Promise.all(Array.from({ length: 50 }, (_, i) => store.append([e(i + 1, 1, 4096)])));
        await store.close();
        let state;
        ({ store, state } = await LogStore.open({ fs: realFs, dir: join(dir, 'raft'), segmentBytes: 64 * 1024 }));
        assert.equal(state.entries.length, 50);
        assert.deepEqual(state.hardState, { term: 1, vote: 1n });
        assert.deepEqual((await store.read(10, 12)).map((x) => x.data.length), [4096, 4096]);
        await store.close();
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});
