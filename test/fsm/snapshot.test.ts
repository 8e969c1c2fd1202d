// Goal: page-exact snapshots (DESIGN.md §3.4). A snapshot taken on a leader with transactions
// pending holds the committed pages only; streamed in small chunks to a fresh node and
// installed, the node has the leader's digests and can go on applying later entries; a
// corrupted snapshot is refused before it replaces anything; a crash just before or just after
// the switch leaves either the old or the new state, never a mix.
// Method: leader + fresh followers in one process; chunks of 64 KiB copied by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred } from '../../src/lib/deferred.js';
import { Fsm, type SnapshotHandle } from '../../src/fsm/fsm.js';
import { LeaderHarness, replay, rows, tempDir, until } from './helpers.js';

const noPropose = (): void => assert.fail('a follower never proposes');
const CHUNK = 64 * 1024;

async function send(snap: SnapshotHandle, to: Fsm, corrupt?: number): Promise<number> {
    const install = await to.beginInstall();
    for (let at = 0; at < snap.bytes; at += CHUNK) {
        const chunk = Buffer.from(await snap.read(at, CHUNK));
        const i = (corrupt ?? 0) - at;
        if (corrupt !== undefined && i >= 0 && i < chunk.length) chunk[i] = (chunk[i] as number) ^ 0x40;
        await install.write(chunk);
    }
    return install.finish();
}

async function leaderWithData(dir: string): Promise<LeaderHarness> {
    const l = new LeaderHarness(dir, { checkpointFramesMin: 50 });
    await l.fsm.start();
    const pump = l.autoCommit();
    for (const name of ['one', 'two', 'three']) {
        const s = await l.fsm.open(name);
        await s.execSql(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
            INSERT INTO t(v) SELECT randomblob(2500) FROM n`, []);
        await s.close();
    }
    await pump.stop();
    await l.commitAll();
    return l;
}

test('a snapshot with writes pending has the committed pages; installed, the node continues', async () => {
    const dirs = [tempDir('snap-l'), tempDir('snap-f'), tempDir('snap-r')];
    const l = await leaderWithData(dirs[0]!.path);
    const follower = new Fsm({ dir: dirs[1]!.path, propose: noPropose });
    const reference = new Fsm({ dir: dirs[2]!.path, propose: noPropose });
    try {
        await follower.start();
        await reference.start();
        const committed = l.log.length;
        await replay(reference, l.log, 1, committed);
        // Pending on the leader while the snapshot is taken.
        const s = await l.fsm.open('two');
        const w = s.execSql(`UPDATE t SET v = NULL; DELETE FROM t WHERE id > 5; VACUUM`, []);
        await until(() => l.log.length === committed + 3, 'three pending entries');
        const snap = await l.fsm.snapshot();
        assert.equal(snap.index, committed);
        assert.equal(await send(snap, follower), committed);
        await snap.release();
        assert.deepEqual((await follower.inspect()).databases, (await reference.inspect()).databases);
        // The pending writes commit: both go on from the snapshot's index.
        await l.commitAll();
        await w;
        await replay(follower, l.log, committed + 1, l.log.length);
        assert.deepEqual((await follower.inspect()).databases, (await l.fsm.inspect()).databases);
        assert.deepEqual(await rows(follower, 'two', 'SELECT count(*), count(v) FROM t'), [[5n, 0n]]);
        await s.close();
    } finally {
        await l.fsm.close();
        await follower.close();
        await reference.close();
        for (const d of dirs) d.remove();
    }
});

test('a corrupted snapshot is refused and the old state stays', async () => {
    const dirs = [tempDir('snapc-l'), tempDir('snapc-f')];
    const l = await leaderWithData(dirs[0]!.path);
    const follower = new Fsm({ dir: dirs[1]!.path, propose: noPropose });
    try {
        await follower.start();
        await replay(follower, l.log, 1, 2);
        const before = await follower.inspect();
        const snap = await l.fsm.snapshot();
        await assert.rejects(send(snap, follower, Math.floor(snap.bytes / 2)), { code: 'ERR_STORAGE_CORRUPT' });
        assert.deepEqual(await follower.inspect(), before);
        await replay(follower, l.log, 3, l.log.length);
        assert.deepEqual((await follower.inspect()).databases, (await l.fsm.inspect()).databases);
        await snap.release();
    } finally {
        await l.fsm.close();
        await follower.close();
        for (const d of dirs) d.remove();
    }
});

for (const point of ['install-before-switch', 'install-after-switch']) {
    test(`crash at ${point}: restart holds the old or the new state, then converges`, async () => {
        const dirs = [tempDir('snapx-l'), tempDir('snapx-f')];
        const l = await leaderWithData(dirs[0]!.path);
        try {
            const failed = new Deferred<void>();
            const f = new Fsm({
                dir: dirs[1]!.path, propose: noPropose, crashPoint: point, onFailure: () => failed.tryResolve(),
            });
            await f.start();
            await replay(f, l.log, 1, 2);
            await f.sync();
            const snap = await l.fsm.snapshot();
            await assert.rejects(send(snap, f));
            await failed.promise;
            await f.close();
            const again = new Fsm({ dir: dirs[1]!.path, propose: noPropose });
            try {
                const { durableIndex } = await again.start();
                assert.equal(durableIndex, point === 'install-before-switch' ? 2 : snap.index);
                await replay(again, l.log, durableIndex + 1, l.log.length);
                assert.deepEqual((await again.inspect()).databases, (await l.fsm.inspect()).databases);
            } finally {
                await again.close();
                await snap.release();
            }
        } finally {
            await l.fsm.close();
            for (const d of dirs) d.remove();
        }
    });
}
