// Goal: the basic write → pending entry → commit → result path, and a follower that applies
// the entries ends with the same pages. Method: one leader Fsm, one follower Fsm, in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fsm } from '../../src/fsm/fsm.js';
import { LeaderHarness, replay, tempDir, until } from './helpers.js';

test('a write resolves only after commit, and a follower ends identical', async () => {
    const d1 = tempDir('l');
    const d2 = tempDir('f');
    const leader = new LeaderHarness(d1.path);
    const follower = new Fsm({ dir: d2.path, propose: () => assert.fail('follower proposes') });
    try {
        await leader.fsm.start();
        await follower.start();
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
    } finally {
        await leader.fsm.close();
        await follower.close();
        d1.remove();
        d2.remove();
    }
});
