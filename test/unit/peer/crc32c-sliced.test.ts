// Goal: the sliced CRC-32C the peer codec uses is the very same function as src/lib/crc32c.ts.
// Method: the standard check value, then seeded random buffers at every alignment and length
// boundary, whole and continued in pieces, compared with the byte-at-a-time reference.
// Replay with SEED=<n> (the seed is printed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../../src/lib/crc32c.js';
import { crc32cSliced } from '../../../src/lib/crc32c-sliced.js';
import { SeededRandom } from '../../../src/lib/random.js';

test('crc32cSliced equals crc32c', () => {
    assert.equal(crc32cSliced(Buffer.from('123456789')), 0xe3069283);
    const seed = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : Math.floor(Math.random() * 2 ** 31);
    console.log(`crc seed: ${seed} (replay with SEED=${seed})`);
    const random = new SeededRandom(seed);
    const data = new Uint8Array(4096 + 16);
    for (let i = 0; i < data.length; i++) data[i] = random.int(256);
    for (let offset = 0; offset < 9; offset++) {
        for (let length = 0; length < 40; length++) {
            const view = data.subarray(offset, offset + length);
            assert.equal(crc32cSliced(view), crc32c(view), `offset ${offset} length ${length}`);
        }
    }
    for (let round = 0; round < 200; round++) {
        const start = random.int(64);
        const end = start + random.int(data.length - start);
        const split = start + random.int(end - start + 1);
        const initial = random.int(2 ** 31);
        const expected = crc32c(data, initial, start, end);
        assert.equal(crc32cSliced(data, initial, start, end), expected);
        assert.equal(crc32cSliced(data, crc32cSliced(data, initial, start, split), split, end), expected);
    }
});
