// Goal: whatever SQL runs on the leader, followers that apply only the replicated page images
// end with byte-identical committed pages that pass PRAGMA integrity_check (DESIGN.md §3).
// Method: a leader Fsm whose captured entries are committed by a background pump, a workload
// of non-deterministic and page-shuffling SQL (random(), randomblob(), datetime('now'), VACUUM,
// triggers, FTS5, JSON, 1 MB blobs, ALTER/DROP TABLE, CREATE INDEX) on ten databases at once,
// small checkpoint and durability intervals so WAL restarts happen; follower A applies entries
// as they come, follower B applies all of them after a restart halfway. Then every digest
// (sha256 of committed pages) and integrity check is compared. The seed (TQLITE_SEED to replay)
// picks the order of the random statements.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { Fsm } from '../../src/fsm/fsm.js';
import type { FsmSession } from '../../src/fsm/fsm.js';
import { LeaderHarness, replay, rows, tempDir } from './helpers.js';

const seed = Number(process.env['TQLITE_SEED'] ?? Date.now() % 1_000_000);

const SCHEMA = `
CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT, r INTEGER DEFAULT (random()), at TEXT DEFAULT (datetime('now')));
CREATE TABLE audit(id INTEGER PRIMARY KEY, k INTEGER, what TEXT, at TEXT);
CREATE TRIGGER kv_ins AFTER INSERT ON kv BEGIN
  INSERT INTO audit(k, what, at) VALUES (new.k, 'ins ' || hex(randomblob(4)), strftime('%f', 'now'));
END;
CREATE VIRTUAL TABLE docs USING fts5(body);
CREATE TABLE js(id INTEGER PRIMARY KEY, doc TEXT);
CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB);
`;

const STEPS: ((n: number) => string)[] = [
    (n) => `INSERT INTO kv(v) VALUES ('v${n}-' || random())`,
    (n) => `INSERT INTO docs(body) VALUES ('lorem ipsum ${n} ' || hex(randomblob(20)))`,
    (n) => `INSERT INTO js(doc) VALUES (json_object('n', ${n}, 'r', random(), 'a', json_array(1, 2, ${n})))`,
    () => `UPDATE js SET doc = json_set(doc, '$.r', random()) WHERE id % 3 = abs(random()) % 3`,
    () => `INSERT INTO big(b) VALUES (randomblob(1048576))`,
    () => `DELETE FROM big WHERE id IN (SELECT id FROM big ORDER BY random() LIMIT 1)`,
    () => `DELETE FROM kv WHERE k % 5 = abs(random()) % 5`,
    (n) => `CREATE INDEX IF NOT EXISTS kv_v_${n % 3} ON kv(v)`,
    (n) => `DROP INDEX IF EXISTS kv_v_${(n + 1) % 3}`,
    (n) => `CREATE TABLE tmp${n}(a, b); INSERT INTO tmp${n} SELECT random(), randomblob(100) FROM kv LIMIT 50`,
    (n) => `ALTER TABLE kv ADD COLUMN c${n} TEXT DEFAULT 'x'`,
    () => `VACUUM`,
];

async function runDatabase(session: FsmSession, random: SeededRandom, steps: number): Promise<void> {
    await session.execSql(SCHEMA, []);
    for (let i = 0; i < steps; i++) {
        const step = STEPS[random.int(STEPS.length)] as (n: number) => string;
        await session.execSql(step(i), []);
        if (random.int(4) === 0) {
            await session.execSql(`BEGIN; INSERT INTO kv(v) VALUES ('tx${i}'); UPDATE kv SET v = v || '!'; COMMIT`, []);
        }
    }
    // Drop whatever temporary tables exist, to exercise DROP TABLE and freelist reuse.
    const names = await session.querySql(`SELECT name FROM sqlite_master WHERE name LIKE 'tmp%'`, []);
    const all: string[] = [];
    for (;;) {
        const b = await names.batches.next();
        if (b.done === true) break;
        for (const r of b.value) all.push(r[0] as string);
    }
    for (const name of all) await session.execSql(`DROP TABLE ${name}`, []);
}

test(`ten databases, non-deterministic SQL: followers are page-identical (seed ${seed})`, async () => {
    console.log(`determinism seed ${seed} (replay: TQLITE_SEED=${seed})`);
    const dirs = [tempDir('det-l'), tempDir('det-a'), tempDir('det-b')];
    const leader = new LeaderHarness(dirs[0]!.path, { checkpointFramesMin: 40, durableEveryEntries: 8 });
    const noPropose = (): void => assert.fail('a follower never proposes');
    let followerA = new Fsm({ dir: dirs[1]!.path, propose: noPropose, durableEveryEntries: 5 });
    let followerB = new Fsm({ dir: dirs[2]!.path, propose: noPropose, durableEveryEntries: 5 });
    try {
        await leader.fsm.start();
        await followerA.start();
        await followerB.start();
        const pump = leader.autoCommit();
        const random = new SeededRandom(seed);
        const sessions = await Promise.all(Array.from({ length: 10 }, (_, i) => leader.fsm.open(`db${i}`)));
        await Promise.all(sessions.map((s, i) => runDatabase(s, new SeededRandom(seed + i), 10 + random.int(5))));
        await pump.stop();
        await leader.commitAll();
        const half = Math.floor(leader.log.length / 2);
        await replay(followerA, leader.log, 1, leader.log.length);
        await replay(followerB, leader.log, 1, half);
        // Restart B: it resumes from its durable index and replays the rest.
        await followerB.close();
        followerB = new Fsm({ dir: dirs[2]!.path, propose: noPropose, durableEveryEntries: 5 });
        const { durableIndex } = await followerB.start();
        assert.ok(durableIndex <= half);
        await replay(followerB, leader.log, durableIndex + 1, leader.log.length);
        const l = await leader.fsm.inspect();
        const a = await followerA.inspect();
        const b = await followerB.inspect();
        assert.equal(l.databases.length, 10);
        for (const d of l.databases) assert.equal(d.integrity, 'ok', d.database);
        assert.deepEqual(a.databases, l.databases);
        assert.deepEqual(b.databases, l.databases);
        console.log(`entries ${leader.log.length}, pages ${l.databases.reduce((n, d) => n + d.sizePages, 0)}, ` +
            `leader ${JSON.stringify(l.stats)}`);
        assert.ok(l.stats.checkpoints > 0, 'the leader checkpointed locally');
        // The followers' files are real SQLite databases with the leader's rows.
        await followerA.close();
        followerA = new Fsm({ dir: dirs[1]!.path, propose: noPropose });
        await followerA.start();
        const expected = await rows(leader.fsm, 'db3', 'SELECT count(*), sum(length(b)) FROM big');
        assert.deepEqual(await rows(followerA, 'db3', 'SELECT count(*), sum(length(b)) FROM big'), expected);
        await Promise.all(sessions.map((s) => s.close()));
    } finally {
        await leader.fsm.close();
        await followerA.close();
        await followerB.close();
        for (const d of dirs) d.remove();
    }
});
