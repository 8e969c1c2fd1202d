// Goal: the configuration codec writes C-Raft's format byte for byte and rejects bad input;
// membership transitions follow the single-server rules.
// Method: a hand-computed vector, round trips, every truncation of a valid encoding, and a
// seeded random-bytes loop (the seed is printed) that may only ever raise DecodeError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { bootstrap } from '../../src/raft/bootstrap.js';
import {
    applyMembershipChange, decodeConfiguration, encodeConfiguration,
} from '../../src/raft/configuration.js';
import { EntryType } from '../../src/raft/types.js';
import type { Configuration } from '../../src/raft/types.js';

const conf: Configuration = {
    servers: [
        { id: 1n, address: '127.0.0.1:9001', role: 'voter' },
        { id: 0xfedcba9876543210n, address: 'h:2', role: 'standby' },
        { id: 3n, address: 'é', role: 'spare' },
    ],
};

test('configuration encoding is C-Raft\'s: format, u64 count, id / NUL-terminated address / role, padded', () => {
    const bytes = encodeConfiguration({ servers: [{ id: 1n, address: 'ab', role: 'voter' }] });
    assert.deepEqual([...bytes], [
        1, // format
        1, 0, 0, 0, 0, 0, 0, 0, // n = 1
        1, 0, 0, 0, 0, 0, 0, 0, // id = 1
        0x61, 0x62, 0, // "ab\0"
        1, // voter
        0, 0, 0, // padding to 24
    ]);
    const roles = encodeConfiguration({
        servers: [{ id: 1n, address: 'a', role: 'standby' }, { id: 2n, address: 'b', role: 'spare' }],
    });
    assert.equal(roles[9 + 8 + 2], 0, 'standby is 0');
    assert.equal(roles[9 + 11 + 8 + 2], 2, 'spare is 2');
});

test('configuration round-trips, including 64-bit ids and UTF-8 addresses', () => {
    const bytes = encodeConfiguration(conf);
    assert.equal(bytes.length % 8, 0);
    assert.deepEqual(decodeConfiguration(bytes), conf);
    assert.deepEqual(decodeConfiguration(encodeConfiguration({ servers: [] })), { servers: [] });
});

test('every truncation and corruption of a valid encoding is a DecodeError', () => {
    const bytes = encodeConfiguration(conf);
    for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decodeConfiguration(bytes.subarray(0, n)), { code: 'ERR_DECODE' }, `length ${n}`);
    }
    const badFormat = Uint8Array.from(bytes);
    badFormat[0] = 2;
    assert.throws(() => decodeConfiguration(badFormat), { code: 'ERR_DECODE' });
    const badRole = encodeConfiguration({ servers: [{ id: 1n, address: 'ab', role: 'voter' }] });
    badRole[20] = 7;
    assert.throws(() => decodeConfiguration(badRole), { code: 'ERR_DECODE' });
    const dup = encodeConfiguration({
        servers: [{ id: 1n, address: 'a', role: 'voter' }, { id: 2n, address: 'b', role: 'voter' }],
    });
    dup[9 + 11] = 1; // second id := 1
    assert.throws(() => decodeConfiguration(dup), { code: 'ERR_DECODE' });
});

test('random bytes only ever raise DecodeError (seed 77)', () => {
    const random = new SeededRandom(77);
    for (let i = 0; i < 3000; i++) {
        const bytes = Uint8Array.from({ length: random.int(64) }, () => random.int(256));
        if (random.chance(0.5) && bytes.length > 0) bytes[0] = 1;
        try {
            decodeConfiguration(bytes);
        } catch (error) {
            assert.equal((error as { code?: string }).code, 'ERR_DECODE');
        }
    }
});

test('membership changes: add as spare, assign, remove, and the refusals', () => {
    const base: Configuration = { servers: [{ id: 1n, address: 'a', role: 'voter' }] };
    const added = applyMembershipChange(base, { kind: 'add', id: 2n, address: 'b' });
    assert.equal(added.servers[1]?.role, 'spare');
    assert.equal(applyMembershipChange(added, { kind: 'assign', id: 2n, role: 'voter' }).servers[1]?.role, 'voter');
    assert.deepEqual(applyMembershipChange(added, { kind: 'remove', id: 2n }), base);
    const refused = [
        () => applyMembershipChange(added, { kind: 'add', id: 2n, address: 'c' }),
        () => applyMembershipChange(added, { kind: 'add', id: 3n, address: 'b' }),
        () => applyMembershipChange(added, { kind: 'assign', id: 9n, role: 'voter' }),
        () => applyMembershipChange(added, { kind: 'assign', id: 2n, role: 'spare' }),
        () => applyMembershipChange(added, { kind: 'remove', id: 1n }),
    ];
    for (const f of refused) assert.throws(f, { code: 'ERR_MEMBERSHIP' });
});

test('bootstrap: term 1 and one change entry at index 1', () => {
    const b = bootstrap(conf);
    assert.deepEqual(b.hardState, { term: 1, vote: 0n });
    assert.equal(b.entries.length, 1);
    assert.equal(b.entries[0]?.index, 1);
    assert.equal(b.entries[0]?.term, 1);
    assert.equal(b.entries[0]?.type, EntryType.change);
    assert.deepEqual(decodeConfiguration(b.entries[0]?.data ?? new Uint8Array()), conf);
});
