// Goal: leadership moved back and forth while writers and a reader run (the handovers of a
// rolling upgrade): every acknowledged write is present afterwards, the database passes
// integrity_check, every node holds the same pages, and each failed request failed with a code
// that says what the client may do (not leader: retry; leadership lost: unknown outcome).
// SQL waits while leadership moves (Node.transfer); writes already in the worker when a transfer
// starts are refused by the raft core (BusyError) after SQLite committed them locally: the Fsm
// abandons and undoes them and the node holds new writes until what was appended is applied —
// this test runs that path a few times per run (printed).
// Method: three createNode() nodes in this process, two writers and a reader on their own
// connections, TRANSFER through the admin client to the next node in turn, 12 times; counts of
// outcomes printed; deadlines on every wait, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAdminClient } from '../../src/client/index.js';
import type { TqliteNode } from '../../src/index.js';
import {
    Outcomes, appWithTable, expectSamePages, insertRecorded, memoryLogger, startCluster, waitFor,
} from './helpers.js';

test('transfers under load: nothing acknowledged is lost, pages stay sound and identical', async () => {
    const log = memoryLogger('warn', 5000);
    const cluster = await startCluster(3, { logger: log.logger });
    const admin = createAdminClient({ servers: cluster.addresses, timeoutMs: 10_000 });
    try {
        const open = await appWithTable(cluster.addresses);
        const acknowledged: number[] = [];
        const outcomes = new Outcomes();
        let running = true;
        let next = 0;
        const writer = async (w: number): Promise<void> => {
            const db = await open();
            while (running) {
                if (!(await insertRecorded(db, next++, w, 500, 'write', acknowledged, outcomes))) {
                    await new Promise((resolve) => setTimeout(resolve, 5));
                }
            }
            await db.close();
        };
        const reader = async (): Promise<void> => {
            const db = await open();
            while (running) {
                try {
                    await db.query('SELECT count(*) FROM t').all();
                    outcomes.add('read ok');
                } catch (error) {
                    outcomes.failed('read', error);
                    await new Promise((resolve) => setTimeout(resolve, 5));
                }
            }
            await db.close();
        };
        const load = Promise.all([writer(1), writer(2), reader()]);
        const nodes = cluster.nodes as TqliteNode[];
        for (let i = 0; i < 12; i++) {
            const leader = await waitFor('a leader', 10_000, () => nodes.find((n) => n.status().role === 'leader'));
            const target = nodes[(nodes.indexOf(leader) + 1) % nodes.length] as TqliteNode;
            const before = outcomes.get('write ok');
            await waitFor('writes before the transfer', 10_000, () =>
                (outcomes.get('write ok') > before + 5 ? true : undefined));
            await admin.transfer(target.id).catch((error: unknown) => outcomes.failed('transfer', error));
            await waitFor('the target to lead', 10_000, () => (target.status().role === 'leader' ? true : undefined));
        }
        running = false;
        await load;
        const abandoned = log.lines().filter((l) => l.includes('transaction not replicated')).length;
        console.log(`transfers under load: ${outcomes.toString()}, `
            + `${abandoned} abandoned (refused during a transfer)`);
        const check = await open();
        const rows = await check.query('SELECT k FROM t').all() as { k: number }[];
        const present = new Set(rows.map((r) => r.k));
        assert.deepEqual(acknowledged.filter((k) => !present.has(k)), [], 'acknowledged writes lost');
        assert.deepEqual(await check.query('PRAGMA integrity_check').all(), [{ integrity_check: 'ok' }]);
        await check.close();
        await expectSamePages(nodes);
        const codes = [...outcomes.counts.keys()].filter((k) => !k.endsWith(' ok'));
        for (const code of codes) {
            assert.match(code, /ERR_NOT_LEADER|ERR_LEADERSHIP_LOST|transfer/, `unexpected failure ${code}`);
        }
    } finally {
        await admin.close();
        await cluster.close();
    }
});
