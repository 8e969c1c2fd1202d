// Goal: tqlite's own client and tqlite's own gateway agree (the cluster suite checks the client
// against real dqlite, the server suite checks the gateway against real go-dqlite tools).
// Method: one in-process gateway (src/server) on 127.0.0.1:0 with the better-sqlite3 test
// backend (test/server/helpers); the client runs exec, a query of many batches, prepared
// statements, transactions, every value type, a query of a write (dqlite ≥ 1.15 semantics:
// zero-column ROWS), and the admin calls that a single node answers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createAdminClient } from '../../src/client/index.js';
import type { Database } from '../../src/client/index.js';
import { startFixture } from '../server/helpers/fixture.js';
import type { Fixture } from '../server/helpers/fixture.js';

let fixture: Fixture;
let db: Database;

before(async () => {
    fixture = await startFixture();
    db = await connect({ servers: [fixture.server.address], database: 'app' });
});

after(async () => {
    await db?.close();
    await fixture?.close();
});

test('exec, a 10,000-row query in many batches, and early exit', async () => {
    await db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT)');
    const result = await db.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
        INSERT INTO t SELECT x, 'row ' || x FROM c`);
    assert.deepEqual(result, { lastInsertId: 10000, rowsAffected: 10000 });
    let expected = 1;
    for await (const row of db.query<{ n: number; s: string }>('SELECT n, s FROM t ORDER BY n')) {
        assert.deepEqual(row, { n: expected, s: `row ${expected}` });
        expected++;
    }
    assert.equal(expected, 10001);
    let seen = 0;
    for await (const _row of db.query('SELECT n FROM t')) {
        if (++seen === 2000) break;
    }
    assert.deepEqual(await db.query('SELECT count(*) AS c FROM t').all(), [{ c: 10000 }]);
});

test('prepared statements, transactions and errors', async () => {
    const insert = await db.prepare('INSERT INTO t (s) VALUES (?)');
    assert.equal(insert.paramCount, 1);
    assert.equal((await insert.exec(['p'])).lastInsertId, 10001);
    await insert.finalize();
    await db.transaction(async (tx) => {
        await tx.exec('INSERT INTO t (s) VALUES (?)', ['in tx']);
    });
    await assert.rejects(db.transaction(async (tx) => {
        await tx.exec('INSERT INTO t (s) VALUES (?)', ['rolled back']);
        throw new Error('no');
    }), /no/);
    assert.deepEqual(await db.query('SELECT s FROM t WHERE n > 10000 ORDER BY n').all(), [{ s: 'p' }, { s: 'in tx' }]);
    await assert.rejects(db.exec('INSERT INTO t (n) VALUES (1)'), { code: 'ERR_SQLITE', sqliteCode: 1555 });
    await assert.rejects(db.exec('SELEC'), { code: 'ERR_SQLITE', sqliteCode: 1 });
    // A write sent as a query runs, with no columns and no rows (dqlite ≥ 1.15 semantics).
    assert.deepEqual(await db.query('INSERT INTO t (s) VALUES (?)', ['via query']).all(), []);
    assert.deepEqual(await db.query('SELECT count(*) AS c FROM t WHERE s = ?', ['via query']).all(), [{ c: 1 }]);
});

test('every value type round-trips', async () => {
    await db.exec('CREATE TABLE v (i INTEGER, f REAL, s TEXT, b BLOB, n, d DATETIME, bo BOOLEAN, big INTEGER)');
    const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 600));
    await db.exec('INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        -7, 0.25, 'ü', Buffer.from([0, 255]), null, when, true, -(2n ** 63n),
    ]);
    assert.deepEqual(await db.query('SELECT * FROM v').all(), [{
        i: -7, f: 0.25, s: 'ü', b: Buffer.from([0, 255]), n: null, d: when, bo: true, big: -(2n ** 63n),
    }]);
});

test('admin calls on a single node', async () => {
    const admin = createAdminClient({ servers: [fixture.server.address] });
    try {
        const leader = await admin.leader();
        assert.equal(leader?.address, fixture.server.address);
        const nodes = await admin.cluster();
        assert.equal(nodes.length, 1);
        assert.equal(nodes[0]?.address, fixture.server.address);
        const metadata = await admin.describe(fixture.server.address);
        assert.equal(typeof metadata.weight, 'bigint');
        const files = await admin.dump(fixture.server.address, 'app');
        assert.deepEqual(files.map((f) => f.name), ['app', 'app-wal']);
        assert.equal(Buffer.from(files[0]?.data ?? []).subarray(0, 15).toString(), 'SQLite format 3');
    } finally {
        await admin.close();
    }
});
