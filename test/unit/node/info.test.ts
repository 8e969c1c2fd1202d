// Goal: node ids keep clusters apart (docs/design-deviations.md 1.15): every new node's id is
// unique — two nodes made at the same address and the same instant still differ, thanks to the
// random bytes — and never 0 or go-dqlite's fixed BootstrapID, which every go-dqlite cluster's
// first node has. Method: generateId over fixed inputs with chosen random bytes (deterministic),
// then over many default draws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOOTSTRAP_ID, generateId } from '../../../src/node/info.js';

test('ids depend on the address, the time and the random bytes; never 0 or BootstrapID', () => {
    const zeros = new Uint8Array(8);
    const ones = new Uint8Array(8).fill(1);
    const base = generateId('127.0.0.1:9001', 5n, zeros);
    assert.equal(generateId('127.0.0.1:9001', 5n, zeros), base, 'a pure function of its inputs');
    assert.notEqual(generateId('127.0.0.1:9001', 5n, ones), base);
    assert.notEqual(generateId('127.0.0.1:9002', 5n, zeros), base);
    assert.notEqual(generateId('127.0.0.1:9001', 6n, zeros), base);

    const seen = new Set<bigint>();
    for (let i = 0; i < 10_000; i++) {
        const id = generateId('127.0.0.1:9001', 5n); // same address and time: only the random bytes differ
        assert.ok(id !== 0n && id !== BOOTSTRAP_ID);
        seen.add(id);
    }
    assert.equal(seen.size, 10_000);
});
