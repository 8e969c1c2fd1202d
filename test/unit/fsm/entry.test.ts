// Goal: the FRAMES entry codec (dqlite's layout, src/fsm/entry.ts) round-trips, matches the
// documented byte layout, and rejects malformed bytes with DecodeError only.
// Method: hand-checked offsets for one entry; every truncation of a valid entry; a seeded
// loop of random byte flips (seed printed; TQLITE_SEED replays).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrames, encodeFrames } from '../../../src/fsm/entry.js';
import { DecodeError } from '../../../src/lib/errors.js';
import { SeededRandom } from '../../../src/lib/random.js';

function sample(pageSize = 512): Uint8Array {
    return encodeFrames({
        database: 'test.db', txId: 7, pageSize, sizeAfterPages: 9, pageNumbers: [3, 1, 9],
        readPage: (i, target) => target.fill(i + 1),
    });
}

test('layout: header, filename text, tx id, size, page count and size, numbers, images', () => {
    const e = Buffer.from(sample());
    assert.equal(e[0], 1);
    assert.equal(e[1], 2);
    assert.equal(e.subarray(8, 16).toString('latin1'), 'test.db\0');
    assert.equal(e.readBigUInt64LE(16), 7n);
    assert.equal(e.readUInt32LE(24), 9);
    assert.equal(e[28], 1);
    assert.equal(e.readUInt32LE(32), 3);
    assert.equal(e.readUInt16LE(36), 512);
    assert.deepEqual([0, 1, 2].map((i) => e.readBigUInt64LE(40 + 8 * i)), [3n, 1n, 9n]);
    assert.equal(e.length, 64 + 3 * 512);
    const d = decodeFrames(e);
    assert.deepEqual(
        { database: d.database, txId: d.txId, pageSize: d.pageSize, size: d.sizeAfterPages, pages: d.pageNumbers },
        { database: 'test.db', txId: 7, pageSize: 512, size: 9, pages: [3, 1, 9] });
    assert.equal(d.pages[0], 1);
    assert.equal(d.pages[2 * 512], 3);
});

test('65536-byte pages are written as 1', () => {
    const e = Buffer.from(sample(65536));
    assert.equal(e.readUInt16LE(36), 1);
    assert.equal(decodeFrames(e).pageSize, 65536);
});

test('every truncation is a DecodeError', () => {
    const e = sample();
    for (let n = 0; n < e.length; n++) assert.throws(() => decodeFrames(e.subarray(0, n)), DecodeError);
});

test('random byte flips never throw anything but DecodeError', () => {
    const seed = Number(process.env['TQLITE_SEED'] ?? Date.now() % 1_000_000);
    console.log(`entry fuzz seed ${seed}`);
    const random = new SeededRandom(seed);
    const base = sample();
    for (let i = 0; i < 2000; i++) {
        const e = Buffer.from(base);
        const flips = 1 + random.int(3);
        for (let f = 0; f < flips; f++) e[random.int(64)] = random.int(256);
        try {
            decodeFrames(e);
        } catch (error) {
            assert.ok(error instanceof DecodeError, `seed ${seed}: ${String(error)}`);
        }
    }
});
