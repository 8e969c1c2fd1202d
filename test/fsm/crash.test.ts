// Goal: a crash at any of the state machine's dangerous moments, followed by a restart and
// the replay of the committed entries after the durable index, ends page-identical with a
// node that never crashed, and loses nothing that was committed.
// Method: the worker exits abruptly (as a killed process would: every write it made is in the
// file system, nothing after it happens) at a named crash point: in the middle of a follower
// apply, after the undo file was made durable, after the undo's checkpoint, right after a
// local checkpoint, before the durable state is written, and before/after the snapshot
// install's switch. The test plays raft with in-memory logs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred } from '../../src/lib/deferred.js';
import { Fsm } from '../../src/fsm/fsm.js';
import { LeaderHarness, replay, tempDir, until } from './helpers.js';

const noPropose = (): void => assert.fail('a follower never proposes');

/** A leader with some committed history on two databases, and a reference follower. */
async function history(): Promise<{ leader: LeaderHarness; reference: Fsm; cleanup: () => Promise<void>;
    dirs: { path: string; remove: () => void }[] }> {
    const dirs = [tempDir('crash-l'), tempDir('crash-r')];
    const leader = new LeaderHarness(dirs[0]!.path, { checkpointFramesMin: 30, durableEveryEntries: 4 });
    const reference = new Fsm({ dir: dirs[1]!.path, propose: noPropose, durableEveryEntries: 3 });
    await leader.fsm.start();
    await reference.start();
    const pump = leader.autoCommit();
    for (const name of ['a', 'b']) {
        const s = await leader.fsm.open(name);
        await s.execSql(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX tv ON t(v)`, []);
        for (let i = 0; i < 12; i++) {
            await s.execSql(
                `INSERT INTO t(v) SELECT randomblob(abs(random()) % 6000) FROM (SELECT 1 UNION SELECT 2)`, []);
            if (i % 5 === 4) await s.execSql(`DELETE FROM t WHERE id % 3 = 0; VACUUM`, []);
        }
        await s.close();
    }
    await pump.stop();
    await leader.commitAll();
    await replay(reference, leader.log, 1, leader.log.length);
    return {
        leader, reference, dirs,
        cleanup: async () => {
            await leader.fsm.close();
            await reference.close();
            for (const d of dirs) d.remove();
        },
    };
}

function crashing(dir: string, crashPoint: string): { fsm: Fsm; crashed: Promise<unknown> } {
    const crashed = new Deferred<unknown>();
    const fsm = new Fsm({
        dir, propose: noPropose, crashPoint, durableEveryEntries: 2, onFailure: (e) => crashed.tryResolve(e),
    });
    return { fsm, crashed: crashed.promise };
}

async function restartAndCompare(dir: string, log: readonly Uint8Array[], reference: Fsm): Promise<void> {
    const fsm = new Fsm({ dir, propose: noPropose });
    try {
        const { durableIndex } = await fsm.start();
        await replay(fsm, log, durableIndex + 1, log.length);
        const got = await fsm.inspect();
        const want = await reference.inspect();
        for (const d of got.databases) assert.equal(d.integrity, 'ok', d.database);
        assert.deepEqual(got.databases, want.databases);
    } finally {
        await fsm.close();
    }
}

for (const point of ['apply-mid', 'durable-before-state']) {
    test(`follower crash at ${point}, restart, replay: identical`, async () => {
        const h = await history();
        const dir = tempDir(`crash-${point}`);
        try {
            const { fsm, crashed } = crashing(dir.path, point);
            await fsm.start();
            const applying = replay(fsm, h.leader.log, 1, h.leader.log.length).catch((e: unknown) => e);
            const error = await crashed;
            assert.match(String(error), /exited with code 70/);
            // apply() resolves once posted (the worker answers only news), so the replay may
            // have posted everything before the worker died: the crash is reported through
            // onFailure, and any apply() after it rejects.
            await applying;
            await assert.rejects(fsm.apply(h.leader.log.length + 1, h.leader.log[0]!));
            await fsm.close();
            await restartAndCompare(dir.path, h.leader.log, h.reference);
        } finally {
            dir.remove();
            await h.cleanup();
        }
    });
}

for (const point of ['undo-after-file', 'undo-after-checkpoint']) {
    test(`leader crash at ${point} with pending transactions, restart, replay: identical`, async () => {
        const h = await history();
        const committed = h.leader.log.length;
        await h.leader.fsm.close();
        try {
            const log = [...h.leader.log];
            const proposed: Uint8Array[] = [];
            const leader = new Fsm({
                dir: h.dirs[0]!.path, propose: (w) => { proposed.push(w.entry); }, crashPoint: point,
                onFailure: () => undefined,
            });
            const failed = new Deferred<void>();
            const { durableIndex } = await leader.start();
            await replay(leader, log, durableIndex + 1, committed);
            const s = await leader.open('a');
            const w1 = s.execSql(`UPDATE t SET v = randomblob(100)`, []).catch((e: unknown) => e);
            const w2 = s.execSql(`DELETE FROM t WHERE id > 3; VACUUM`, []).catch((e: unknown) => e);
            await until(() => proposed.length === 3, 'three pending transactions');
            const lost = leader.leadershipLost().catch((e: unknown) => {
                failed.resolve();
                return e;
            });
            await failed.promise;
            assert.ok((await lost) instanceof Error);
            for (const w of [w1, w2]) assert.ok((await w) instanceof Error);
            await leader.close();
            await restartAndCompare(h.dirs[0]!.path, log, h.reference);
        } finally {
            await h.cleanup();
        }
    });
}

test('leader crash right after a local checkpoint, restart, replay: identical', async () => {
    const dirs = [tempDir('ckpt-l'), tempDir('ckpt-r')];
    const log: Uint8Array[] = [];
    const failed = new Deferred<void>();
    const leader = new Fsm({
        dir: dirs[0]!.path, propose: (w) => { log.push(w.entry); }, crashPoint: 'checkpoint-after',
        checkpointFramesMin: 20, onFailure: () => failed.tryResolve(),
    });
    const reference = new Fsm({ dir: dirs[1]!.path, propose: noPropose });
    try {
        await leader.start();
        await reference.start();
        const s = await leader.open('a');
        let applied = 0;
        // Write and commit one transaction at a time until the checkpoint crash stops the worker.
        for (let i = 0; i < 200 && !failed.settled; i++) {
            const sql = i === 0 ? 'CREATE TABLE t(v)' : 'INSERT INTO t VALUES (randomblob(3000))';
            const write = s.execSql(sql, []).catch((e: unknown) => e);
            await until(() => log.length > applied || failed.settled, 'an entry');
            if (failed.settled) break;
            applied++;
            await leader.apply(applied, log[applied - 1]!).catch(() => undefined);
            await write;
        }
        assert.ok(failed.settled, 'the worker crashed after a checkpoint');
        await leader.close();
        // Committed = what the pump applied; the reference applies the same prefix.
        const committed = log.slice(0, applied);
        await replay(reference, committed, 1, committed.length);
        await restartAndCompare(dirs[0]!.path, committed, reference);
    } finally {
        await leader.close();
        await reference.close();
        for (const d of dirs) d.remove();
    }
});
