// Goal: the client's value mapping (src/client/values.ts) matches go-dqlite and never loses
// precision: parameters to wire values, wire values to JS, go-dqlite's time layouts, addresses.
// Method: table-driven cases, including the edges (2^53, i64 bounds, -0, NaN, time zones).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/client/connection.js';
import { formatDate, fromWireValue, parseTime, toWireValue } from '../../src/client/values.js';
import { ValueType } from '../../src/wire/index.js';

test('numbers bind as INTEGER when they are safe integers, else FLOAT; bigints must fit i64', () => {
    assert.deepEqual(toWireValue(3, 0), { type: ValueType.integer, value: 3n });
    assert.deepEqual(toWireValue(-0, 0), { type: ValueType.integer, value: 0n });
    assert.deepEqual(toWireValue(2 ** 53, 0), { type: ValueType.float, value: 2 ** 53 });
    assert.deepEqual(toWireValue(0.5, 0), { type: ValueType.float, value: 0.5 });
    assert.deepEqual(toWireValue(NaN, 0), { type: ValueType.float, value: NaN });
    assert.deepEqual(toWireValue(-(2n ** 63n), 0), { type: ValueType.integer, value: -(2n ** 63n) });
    assert.throws(() => toWireValue(2n ** 63n, 0), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => toWireValue(Symbol('x') as unknown as string, 0), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => toWireValue({} as unknown as string, 0), { code: 'ERR_INVALID_ARGUMENT' });
});

test('INTEGER comes back as a number when exact, else as a bigint; safeIntegers always gives bigint', () => {
    const int = (value: bigint) => ({ type: ValueType.integer, value }) as const;
    assert.equal(fromWireValue(int(42n), false), 42);
    assert.equal(fromWireValue(int(2n ** 53n - 1n), false), 2 ** 53 - 1);
    assert.equal(fromWireValue(int(2n ** 53n), false), 2n ** 53n);
    assert.equal(fromWireValue(int(-(2n ** 63n)), false), -(2n ** 63n));
    assert.equal(fromWireValue(int(1n), true), 1n);
    assert.deepEqual(fromWireValue({ type: ValueType.unixTime, value: 1700000000n }, false), new Date(1700000000000));
    assert.equal(fromWireValue({ type: ValueType.boolean, value: true }, false), true);
    assert.equal(fromWireValue({ type: ValueType.iso8601, value: '' }, false), null);
    assert.equal(fromWireValue({ type: ValueType.iso8601, value: 'not a time' }, false), 'not a time');
    assert.ok(Buffer.isBuffer(fromWireValue({ type: ValueType.blob, value: new Uint8Array([1]) }, false)));
});

test('dates use go-dqlite\'s layout in UTC, with the fraction trimmed', () => {
    assert.equal(formatDate(new Date(Date.UTC(2024, 0, 2, 3, 4, 5))), '2024-01-02 03:04:05+00:00');
    assert.equal(formatDate(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 100))), '2024-01-02 03:04:05.1+00:00');
    assert.equal(formatDate(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 7))), '2024-01-02 03:04:05.007+00:00');
    assert.throws(() => formatDate(new Date(NaN)), { code: 'ERR_INVALID_ARGUMENT' });
});

test('row times parse with every layout go-dqlite tries', () => {
    const at = (ms: number) => new Date(ms);
    const base = Date.UTC(2024, 0, 2, 3, 4, 5);
    assert.deepEqual(parseTime('2024-01-02 03:04:05'), at(base));
    assert.deepEqual(parseTime('2024-01-02T03:04:05Z'), at(base));
    assert.deepEqual(parseTime('2024-01-02 03:04:05.123456789+00:00'), at(base + 123));
    assert.deepEqual(parseTime('2024-01-02 05:04:05+02:00'), at(base));
    assert.deepEqual(parseTime('2024-01-01 22:04:05-05:00'), at(base));
    assert.deepEqual(parseTime('2024-01-02 03:04'), at(Date.UTC(2024, 0, 2, 3, 4)));
    assert.deepEqual(parseTime('2024-01-02'), at(Date.UTC(2024, 0, 2)));
    assert.equal(parseTime('yesterday'), undefined);
    // A parameter written by formatDate reads back as the same instant.
    const now = new Date(Date.UTC(2031, 5, 7, 8, 9, 10, 11));
    assert.deepEqual(parseTime(formatDate(now)), now);
});

test('addresses: host:port, [v6]:port, @abstract; anything else is refused', () => {
    assert.deepEqual(parseAddress('127.0.0.1:9001'), { host: '127.0.0.1', port: 9001 });
    assert.deepEqual(parseAddress('localhost:1'), { host: 'localhost', port: 1 });
    assert.deepEqual(parseAddress('[::1]:9001'), { host: '::1', port: 9001 });
    assert.deepEqual(parseAddress('@dqlite'), { path: '\0dqlite' });
    assert.throws(() => parseAddress('no-port'), { code: 'ERR_UNAVAILABLE' });
    assert.throws(() => parseAddress('h:99999'), { code: 'ERR_UNAVAILABLE' });
});
