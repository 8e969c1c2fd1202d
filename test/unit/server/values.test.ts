// Goal: the gateway's pure tables: row value typing by declared type (wire-protocol.md §4.1,
// without dqlite's crashes and its NULL-as-false, §12), parameter binding types, and the error
// → FAILURE table (§7). Method: table-driven cases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
    BusyError, ClosedError, IndeterminateError, MembershipError, NotLeaderError, SqliteError, StorageError,
    UnavailableError,
} from '../../../src/lib/errors.js';
import { failureOf } from '../../../src/server/failure.js';
import { columnKind, paramValue, wireValue } from '../../../src/server/values.js';
import type { WireValue } from '../../../src/wire/index.js';

test('declared types select the column kind, in any letter case, only for exact names', () => {
    const kind = (declType: string | null): string => columnKind({ name: 'c', declType });
    assert.equal(kind('DATETIME'), 'time');
    assert.equal(kind('date'), 'time');
    assert.equal(kind('Timestamp'), 'time');
    assert.equal(kind('boolean'), 'boolean');
    assert.equal(kind('DATETIME2'), 'plain');
    assert.equal(kind('BOOL'), 'plain');
    assert.equal(kind(null), 'plain');
});

test('row values: run-time type first, declared type refines, mismatches fall back', () => {
    const cases: [Parameters<typeof wireValue>[0], 'plain' | 'time' | 'boolean', WireValue][] = [
        [5n, 'plain', { type: 1, value: 5n }],
        [1.5, 'plain', { type: 2, value: 1.5 }],
        ['x', 'plain', { type: 3, value: 'x' }],
        [Buffer.from([1]), 'plain', { type: 4, value: Buffer.from([1]) }],
        [null, 'plain', { type: 5, value: null }],
        [1700000000n, 'time', { type: 9, value: 1700000000n }],
        ['2024-01-02', 'time', { type: 10, value: '2024-01-02' }],
        [null, 'time', { type: 10, value: '' }],
        [2.5, 'time', { type: 2, value: 2.5 }],
        [Buffer.from([2]), 'time', { type: 4, value: Buffer.from([2]) }],
        [1n, 'boolean', { type: 11, value: true }],
        [0n, 'boolean', { type: 11, value: false }],
        [null, 'boolean', { type: 5, value: null }],
        ['yes', 'boolean', { type: 3, value: 'yes' }],
        [0.5, 'boolean', { type: 2, value: 0.5 }],
    ];
    for (const [value, kind, expected] of cases) {
        assert.deepEqual(wireValue(value, kind), expected, `${String(value)} in a ${kind} column`);
    }
});

test('parameters: ISO8601 binds as text, BOOLEAN as 0/1, UNIXTIME cannot be bound', () => {
    assert.equal(paramValue({ type: 1, value: -3n }), -3n);
    assert.equal(paramValue({ type: 2, value: 0.25 }), 0.25);
    assert.equal(paramValue({ type: 3, value: 'a' }), 'a');
    assert.equal(paramValue({ type: 5, value: null }), null);
    assert.equal(paramValue({ type: 10, value: '2024-01-02 03:04:05+00:00' }), '2024-01-02 03:04:05+00:00');
    assert.equal(paramValue({ type: 11, value: true }), 1n);
    assert.equal(paramValue({ type: 11, value: false }), 0n);
    assert.equal(paramValue({ type: 9, value: 1n }), undefined);
});

test('errors map to the FAILURE codes clients branch on', () => {
    const cases: [unknown, number, string | undefined, boolean][] = [
        [new NotLeaderError(), 10250, 'not leader', false],
        [new IndeterminateError(), 10506, 'leadership lost', false],
        [new SqliteError(1555, 'UNIQUE constraint failed: t.id'), 1555, 'UNIQUE constraint failed: t.id', false],
        [new SqliteError(1002, 'database does not exist'), 1002, undefined, false],
        [new BusyError('a configuration change is already in progress'), 5, undefined, false],
        [new MembershipError('server ID already in use'), 1, 'server ID already in use', false],
        [new ClosedError(), 10250, 'not leader', false],
        [new UnavailableError(), 10250, 'not leader', false],
        [new StorageError('fsync failed'), 10, 'disk I/O error', true],
        [new TypeError('bug'), 1, 'internal error', true],
    ];
    for (const [error, code, message, internal] of cases) {
        const failure = failureOf(error);
        assert.equal(failure.code, code, String(error));
        if (message !== undefined) assert.equal(failure.message, message);
        assert.equal(failure.internal, internal);
    }
});
