// Goal: the CRC-32C functions of src/lib/crc32c.ts give the standard values, and the one-pass
// XOR-with-a-key-stream + CRC (the log's batch whitening) gives exactly what XORing first and
// computing the CRC after gives, on every alignment, length and key offset.
// Method: known vectors (RFC 3720 B.4 and the "123456789" check value); then seeded random
// inputs compared with a bit-at-a-time reference and with crc32c after a separate XOR pass.
// Replay: SEED=<n> node --test build/test/lib/crc32c.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, crc32cXorKey } from '../../src/lib/crc32c.js';
import { SeededRandom } from '../../src/lib/random.js';

const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000);

/** Bit at a time, straight from the definition (reflected polynomial 0x82F63B78). */
function reference(data: Uint8Array, crc = 0): number {
    let c = ~crc >>> 0;
    for (const byte of data) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
}

function keyByte(key: Uint32Array, b: number): number {
    return ((key[(b >>> 2) % key.length] as number) >>> ((b & 3) * 8)) & 0xff;
}

test('crc32c gives the standard check values', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('crc32cXorKey with an all-zero key is crc32c and leaves the data as it was', () => {
    const data = Buffer.from('123456789abcdefghijklmnopqrstuvwxyz0123456789');
    const copy = Buffer.from(data);
    assert.equal(crc32cXorKey(data, new Uint32Array(4), 3), crc32c(copy));
    assert.deepEqual(data, copy);
    assert.equal(crc32cXorKey(Buffer.from('123456789'), new Uint32Array(1), 0), 0xe3069283);
});

test(`crc32cXorKey equals XOR then crc32c on random inputs (seed ${SEED})`, () => {
    console.log(`seed ${SEED} (replay with SEED=${SEED})`);
    const random = new SeededRandom(SEED);
    for (let round = 0; round < 400; round++) {
        const keyWords = 1 << random.int(6);
        const key = Uint32Array.from({ length: keyWords }, () => random.int(0x1_0000_0000) >>> 0);
        const size = random.chance(0.2) ? random.int(70_000) : random.int(300);
        const backing = new Uint8Array(size + 16);
        for (let i = 0; i < backing.length; i++) backing[i] = random.int(256);
        // A view at any byte offset of its buffer, so both the word path and the byte path run.
        const shift = random.int(8);
        const data = backing.subarray(shift, shift + size);
        const start = random.int(Math.min(size, 40) + 1);
        const end = start + random.int(size - start + 1);
        const keyWord = random.int(4 * keyWords);
        const crc = random.chance(0.5) ? 0 : random.int(0x1_0000_0000) >>> 0;

        const expected = Uint8Array.from(data);
        const k0 = 4 * (keyWord % keyWords);
        for (let i = start; i < end; i++) expected[i] = (expected[i] as number) ^ keyByte(key, k0 + i - start);
        const what = `round ${round}: size ${size} shift ${shift} [${start}, ${end}) key ${keyWords} words from ${keyWord}`;

        const got = crc32cXorKey(data, key, keyWord, crc, start, end);
        assert.deepEqual(data, expected, `${what}: data after the XOR`);
        const slice = expected.subarray(start, end);
        assert.equal(got, reference(slice, crc), `${what}: against the bitwise reference`);
        assert.equal(got, crc32c(expected, crc, start, end), `${what}: against crc32c`);
    }
});
