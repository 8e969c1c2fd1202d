// Goal: the basic write → pending entry → commit → result path, and a follower that applies
// the entries ends with the same pages, for transactions of any size. Method: one leader Fsm,
// one follower Fsm, in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fsm } from '../../src/fsm/fsm.js';
import { LeaderHarness, replay, tempDir, until } from './helpers.js';

/** Runs `fn` with a started leader harness and a follower Fsm, then closes both and removes their files. */
async function withPair(fn: (leader: LeaderHarness, follower: Fsm) => Promise<void>): Promise<void> {
    const d1 = tempDir('l');
    const d2 = tempDir('f');
    const leader = new LeaderHarness(d1.path);
    const follower = new Fsm({ dir: d2.path, propose: () => assert.fail('follower proposes') });
    try {
        await leader.fsm.start();
        await follower.start();
        await fn(leader, follower);
    } finally {
        await leader.fsm.close();
        await follower.close();
        d1.remove();
        d2.remove();
    }
}

test('a write resolves only after commit, and a follower ends identical', () => withPair(async (leader, follower) => {
    const s = await leader.fsm.open('main');
    let resolved = false;
    const p = s.execSql('CREATE TABLE t(x); INSERT INTO t VALUES (random())', []).then((r) => {
        resolved = true;
        return r;
    });
    await until(() => leader.proposed.length === 2, 'two entries');
    assert.equal(resolved, false);
    await leader.commitAll();
    const r = await p;
    assert.equal(r.rowsAffected, 1n);
    await replay(follower, leader.log, 1, leader.log.length);
    const a = await leader.fsm.inspect();
    const b = await follower.inspect();
    assert.deepEqual(b.databases, a.databases);
    assert.equal(a.databases[0]?.integrity, 'ok');
    // DUMP: the same consolidated image on both nodes, an SQLite file of the committed pages.
    const image = await leader.fsm.dump('main');
    assert.ok(Buffer.from(image).equals(Buffer.from(await follower.dump('main'))));
    assert.equal(Buffer.from(image.subarray(0, 15)).toString('latin1'), 'SQLite format 3');
    await assert.rejects(leader.fsm.dump('nope'), { code: 'ERR_SQLITE', sqliteCode: 1002 });
    await s.close();
}));

// The worker finds a transaction's frames by reading the WAL a chunk at a time (wal.ts,
// captureTransactionAt: 15 frames of 4 KiB pages per read) and takes small transactions' page
// images from the first chunk. Sizes around and across the chunk boundary, many chunks, and a
// WAL restart in between must all replicate to identical pages.
test('transactions of one page to many scan chunks are captured whole', () => withPair(async (leader, follower) => {
    const s = await leader.fsm.open('main');
    const run = async (sql: string): Promise<void> => {
        const p = s.execSql(sql, []);
        await until(() => leader.log.length > leader.committedUpTo, 'proposed');
        await leader.commitAll();
        await p;
    };
    await run('CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)');
    const pages = [1, 13, 14, 15, 16, 29, 30, 31, 100];
    for (const [k, n] of pages.entries()) await run(`INSERT INTO t VALUES (${k}, randomblob(${n * 4000}))`);
    assert.equal(await leader.fsm.checkpoint(), true);
    await run('UPDATE t SET v = randomblob(length(v)) WHERE k % 2 = 0');
    await run('DELETE FROM t WHERE k = 3');
    await replay(follower, leader.log, 1, leader.log.length);
    const a = await leader.fsm.inspect();
    const b = await follower.inspect();
    assert.deepEqual(b.databases, a.databases);
    assert.equal(a.databases[0]?.integrity, 'ok');
    assert.ok(Buffer.from(await leader.fsm.dump('main')).equals(Buffer.from(await follower.dump('main'))));
    await s.close();
}));
