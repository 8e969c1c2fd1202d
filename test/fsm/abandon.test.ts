// Goal: a transaction the Fsm cannot propose (too large for one entry, or refused: not leader, a
// transfer in progress) is abandoned safely: its writer gets SQLITE_TOOBIG / NotLeaderError,
// nothing captured after it is proposed, onAbandon() is called before the undo, every pending
// transaction is undone, and a transaction proposed before it keeps its real outcome: when its
// entry commits it is applied (as a follower applies it) and its writer succeeds — so a write
// after that runs on pages that hold it.
// Method: one Fsm driven by hand (the "raft" is the test: it records proposals, resolves their
// outcomes, and applies entries with fsm.apply); rows read back through a session.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fsm } from '../../src/fsm/fsm.js';
import type { CapturedWrite } from '../../src/fsm/protocol.js';
import { Deferred } from '../../src/lib/deferred.js';
import { NotLeaderError } from '../../src/lib/errors.js';
import { rows, tempDir, until } from './helpers.js';

interface Proposal {
    readonly write: CapturedWrite;
    readonly outcome: Deferred<void>;
}

function harness(refuse: () => Error | undefined = () => undefined): {
    fsm: Fsm; proposals: Proposal[]; abandons: () => number; dir: { remove: () => void };
} {
    const dir = tempDir('abandon');
    const proposals: Proposal[] = [];
    let abandons = 0;
    const fsm = new Fsm({
        dir: dir.path,
        maxEntryBytes: 64 * 1024,
        propose: (write) => {
            const refusal = refuse();
            if (refusal !== undefined) throw refusal;
            const outcome = new Deferred<void>();
            proposals.push({ write, outcome });
            return outcome.promise;
        },
        onAbandon: () => {
            abandons++;
        },
    });
    return { fsm, proposals, abandons: () => abandons, dir };
}

/** Raft commits proposal i (1-based log index = i + 1 after the table's entry). */
async function commit(fsm: Fsm, proposals: Proposal[], i: number): Promise<void> {
    const p = proposals[i] as Proposal;
    await fsm.apply(i + 1, p.write.entry);
    p.outcome.resolve();
}

/** Creates table t (`columns`) and commits it, then starts INSERT `insert`: resolves once that write is proposed. */
async function tableThenPendingWrite(h: ReturnType<typeof harness>, columns: string, insert: string):
    Promise<{ a: Promise<unknown> }> {
    const s1 = await h.fsm.open('app');
    const create = s1.execSql(`CREATE TABLE t (${columns})`, []);
    await until(() => h.proposals.length === 1, 'the table');
    await commit(h.fsm, h.proposals, 0);
    await create;
    const a = s1.execSql(insert, []);
    a.catch(() => undefined); // awaited by the test
    await until(() => h.proposals.length === 2, 'A proposed');
    return { a };
}

test('too large: the earlier pending write keeps its outcome, nothing after is proposed', async () => {
    const h = harness();
    await h.fsm.start();
    try {
        const { a } = await tableThenPendingWrite(h, 'k INTEGER PRIMARY KEY, b BLOB',
            'INSERT INTO t VALUES (1, randomblob(100))');
        const s2 = await h.fsm.open('app');
        const big = s2.execSql('INSERT INTO t VALUES (2, randomblob(200000))', []);
        await assert.rejects(big, { code: 'ERR_SQLITE', sqliteCode: 18 });
        assert.equal(h.abandons(), 1);
        assert.equal(h.proposals.length, 2, 'the big transaction was not proposed');

        // Raft commits A after the undo: applied as a follower applies it; its writer succeeds.
        let aSettled = false;
        void a.then(() => { aSettled = true; }, () => { aSettled = true; });
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
        assert.equal(aSettled, false, 'A waits for its outcome');
        await commit(h.fsm, h.proposals, 1);
        await a;

        // A later write runs on pages that hold A.
        const s3 = await h.fsm.open('app');
        const c = s3.execSql('INSERT INTO t VALUES (3, randomblob(100))', []);
        await until(() => h.proposals.length === 3, 'C proposed');
        await commit(h.fsm, h.proposals, 2);
        await c;
        assert.deepEqual(await rows(h.fsm, 'app', 'SELECT k FROM t ORDER BY k'), [[1n], [3n]]);
        assert.deepEqual(await rows(h.fsm, 'app', 'PRAGMA integrity_check'), [['ok']]);
    } finally {
        await h.fsm.close();
        h.dir.remove();
    }
});

test('refused (not leader): the writer gets NotLeaderError, the earlier one its outcome', async () => {
    let refusing = false;
    const h = harness(() => (refusing ? new NotLeaderError('not leader') : undefined));
    await h.fsm.start();
    try {
        const { a } = await tableThenPendingWrite(h, 'k INTEGER PRIMARY KEY', 'INSERT INTO t VALUES (1)');
        refusing = true;
        const s2 = await h.fsm.open('app');
        await assert.rejects(s2.execSql('INSERT INTO t VALUES (2)', []), { code: 'ERR_NOT_LEADER' });
        assert.equal(h.abandons(), 1);
        h.proposals[1]?.outcome.reject(new NotLeaderError('replaced by another leader'));
        await assert.rejects(a, { code: 'ERR_NOT_LEADER' });
        assert.deepEqual(await rows(h.fsm, 'app', 'SELECT count(*) FROM t'), [[0n]]);
    } finally {
        await h.fsm.close();
        h.dir.remove();
    }
});
