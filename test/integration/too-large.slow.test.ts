// Goal: a write transaction whose pages do not fit in one replicated entry (one peer frame) fails
// with SQLITE_TOOBIG instead of being appended to the leader's log, where it could never reach a
// follower and would stall every later commit; the cluster goes on committing, the big
// transaction is nowhere, and every node holds the same pages.
// Method: three real createNode() nodes with the test hook testing.maxEntryBytes lowered to
// 256 KiB (the real limit is the peer frame limit, 256 MiB, too big for a test); the client
// library; digests from node.inspect(); deadlines on every wait, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { SqliteError } from '../../src/lib/errors.js';
import type { TqliteNode } from '../../src/index.js';
import { Outcomes, appWithTable, expectSamePages, insertRecorded, startCluster } from './helpers.js';

test('a transaction too large for one replicated entry fails with SQLITE_TOOBIG; commits go on', async () => {
    const cluster = await startCluster(3, { testing: { maxEntryBytes: 256 * 1024 } });
    try {
        const db = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        await db.exec('INSERT INTO t VALUES (1, randomblob(1000))');

        // ~1 MiB of pages in one statement, and again inside an explicit transaction.
        await assert.rejects(db.exec('INSERT INTO t VALUES (2, randomblob(1000000))'), (error: unknown) => {
            assert.ok(error instanceof SqliteError, String(error));
            assert.equal(error.sqliteCode, 18);
            assert.match(error.message, /transaction too large/);
            return true;
        });
        await assert.rejects(async () => {
            await db.exec('BEGIN');
            for (let k = 10; k < 20; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(100000))', [k]);
            await db.exec('COMMIT');
        }, (error: unknown) => error instanceof SqliteError && error.sqliteCode === 18);

        // The cluster still commits, on the same leader or another.
        for (let k = 100; k < 110; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(1000))', [k]);
        assert.deepEqual(await db.query('SELECT k FROM t ORDER BY k').all(),
            [1, ...Array.from({ length: 10 }, (_, i) => 100 + i)].map((k) => ({ k })));
        await db.close();

        await expectSamePages(cluster.nodes as TqliteNode[]);
    } finally {
        await cluster.close();
    }
});

test('too large while other writes are in flight: every acknowledged write survives, pages stay sound', async () => {
    // Two writers race a third that keeps sending transactions too large to replicate: each
    // refusal undoes whatever is pending, while the small writes' entries may still commit.
    // Writes must wait until those are applied again, or they would run on pages missing them.
    const cluster = await startCluster(3, { testing: { maxEntryBytes: 64 * 1024 } });
    try {
        const open = await appWithTable(cluster.addresses);
        const acknowledged: number[] = [];
        const outcomes = new Outcomes();
        let next = 0;
        const small = async (w: number): Promise<void> => {
            const db = await open();
            for (let i = 0; i < 40; i++) await insertRecorded(db, next++, w, 3000, 'small', acknowledged, outcomes);
            await db.close();
        };
        const big = async (): Promise<void> => {
            const db = await open();
            for (let i = 0; i < 15; i++) {
                try {
                    await db.exec('INSERT INTO t VALUES (?, 9, randomblob(200000))', [1_000_000 + i]);
                    outcomes.add('big ok');
                } catch (error) {
                    outcomes.failed('big', error);
                }
            }
            await db.close();
        };
        await Promise.all([small(1), small(2), big()]);
        console.log(`outcomes: ${outcomes.toString()}`);
        assert.equal(outcomes.get('big ok'), 0, 'a transaction too large was committed');
        const check = await open();
        const rows = await check.query('SELECT k FROM t WHERE k < 1000000').all() as { k: number }[];
        const present = new Set(rows.map((r) => r.k));
        assert.deepEqual(acknowledged.filter((k) => !present.has(k)), [], 'acknowledged writes lost');
        assert.deepEqual(await check.query('PRAGMA integrity_check').all(), [{ integrity_check: 'ok' }]);
        await check.close();
        await expectSamePages(cluster.nodes as TqliteNode[]);
    } finally {
        await cluster.close();
    }
});
