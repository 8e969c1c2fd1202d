// Goal: the path that crashed MicroOVN on dqlite in 2024 — a second and then a third node join
// a cluster that is busy (a writer and a reader running without pause) and whose log was
// compacted, so each joiner catches up from a snapshot of several MiB while new entries keep
// arriving — ends with three voters, every acknowledged write present and byte-identical on
// every node, the cluster still serving through a leader handover, and nothing left behind.
// Method: real createNode() nodes in this process on 127.0.0.1 (small snapshot thresholds so
// the joiners must take a snapshot), the client library for the load, node.status() for roles
// and node.inspect() for page digests; a resource count before and after; deadlines on every
// wait, no sleeps. The writer records each acknowledged key; a write that fails is retried
// with a new key (its outcome is unknown and not counted).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Database } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { expectSamePages, freePort, memoryLogger, tempDir, waitFor } from './helpers.js';
import { Leftovers } from '../node/leftovers.js';

interface Load {
    readonly acknowledged: Set<number>;
    readonly errors: string[];
    reads: number;
    stop(): Promise<void>;
}

/** After a failed request: lets timers and sockets run (a request can fail without any I/O). */
function backOff(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, 5));
}

/** A writer and a reader that run until stop(), each on its own connection. */
function startLoad(writer: Database, reader: Database): Load {
    let running = true;
    const load: Load = {
        acknowledged: new Set<number>(),
        errors: [],
        reads: 0,
        stop: async () => {
            running = false;
            await Promise.all([writing, reading]);
        },
    };
    let next = 1_000_000;
    const writing = (async () => {
        while (running) {
            const key = next++;
            try {
                await writer.exec('INSERT INTO t (k, b) VALUES (?, randomblob(300))', [key]);
                load.acknowledged.add(key);
            } catch (error) {
                load.errors.push(`write ${key}: ${(error as Error).message}`);
                await backOff();
            }
        }
    })();
    const reading = (async () => {
        while (running) {
            try {
                await reader.query('SELECT count(*) AS n FROM t').all();
                load.reads++;
            } catch (error) {
                load.errors.push(`read: ${(error as Error).message}`);
                await backOff();
            }
        }
    })();
    return load;
}

test('joins under load: the second and third node catch up from snapshots while writes go on', async () => {
    const leftovers = await Leftovers.baseline();
    const dir = tempDir('join-load');
    const log = memoryLogger('info', 5000);
    const snapshot = { thresholdEntries: 64, trailingEntries: 16 };
    const addresses: string[] = [];
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const nodes: TqliteNode[] = [];
    const start = async (i: number): Promise<TqliteNode> => {
        const node = await createNode({
            address: addresses[i] as string, dataDir: `${dir.path}/n${i + 1}`, snapshot, logger: log.logger,
            join: i === 0 ? [] : [addresses[0] as string],
        });
        nodes.push(node);
        return node;
    };
    const dbs: Database[] = [];
    let load: Load | undefined;
    const fail = (error: unknown): never => assert.fail(`${String(error)}\n`
        + `requests failed: ${load?.errors.length ?? 0}, e.g. ${load?.errors.slice(-3).join(' | ')}\n`
        + nodes.map((n) => { const s = n.status(); return `${s.id} ${s.role} term=${s.term} commit=${s.commitIndex} `
            + `applied=${s.appliedIndex}`; }).join('\n') + '\n'
        + log.lines().filter((l) => !l.includes('snapshot taken')).slice(-60).join('\n'));
    try {
        await start(0);
        const open = async (): Promise<Database> => {
            const db = await connect({ servers: addresses, database: 'app', timeoutMs: 30_000 });
            dbs.push(db);
            return db;
        };
        const setup = await open();
        await setup.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        // ~40 MiB of pages (a snapshot takes longer to send and install than an election
        // timeout) in 100 transactions: more than the snapshot threshold, so the log is
        // compacted behind a snapshot before anyone joins.
        const batches = 100;
        const rowsPerBatch = 100;
        for (let batch = 0; batch < batches; batch++) {
            await setup.exec('BEGIN');
            for (let k = batch * rowsPerBatch; k < (batch + 1) * rowsPerBatch; k++) {
                await setup.exec('INSERT INTO t (k, b) VALUES (?, randomblob(4000))', [k]);
            }
            await setup.exec('COMMIT');
        }
        const preloaded = batches * rowsPerBatch;

        const active = startLoad(await open(), await open());
        load = active;
        // Below three members only the leader votes (go-dqlite's rule): node 2 joins as a spare
        // and gets no traffic; the third join makes the role manager promote both joiners.
        const second = await start(1);
        await waitFor('node 2 to be a member', 30_000, () =>
            ((nodes[0] as TqliteNode).status().configuration.servers.some((s) => s.id === second.id)
                ? true : undefined)).catch(fail);
        await start(2);
        const servers = await waitFor('three voters', 90_000, () => {
            const leader = nodes.find((n) => n.status().role === 'leader');
            const s = leader?.status().configuration.servers ?? [];
            return s.length === 3 && s.every((x) => x.role === 'voter') ? s : undefined;
        }).catch(fail);
        assert.equal(servers.length, 3);
        const readsBefore = active.reads;
        await waitFor('the load to go on with three voters', 30_000, () =>
            (active.reads > readsBefore + 20 ? true : undefined));

        // Handover while the load runs: the leader stops, another takes over, the load goes on.
        const leader = nodes.find((n) => n.status().role === 'leader') as TqliteNode;
        await leader.close();
        const writesBefore = active.acknowledged.size;
        await waitFor('writes through the next leader', 30_000, () =>
            (active.acknowledged.size > writesBefore + 20 ? true : undefined));
        await active.stop();

        const live = nodes.filter((n) => n !== leader);
        await waitFor('a leader among the two left', 10_000, () =>
            live.find((n) => n.status().role === 'leader'));
        const check = await connect({ servers: addresses, database: 'app', timeoutMs: 30_000 });
        dbs.push(check);
        const rows = await check.query('SELECT k FROM t WHERE k >= 1000000').all() as { k: number }[];
        const present = new Set(rows.map((r) => r.k));
        const lost = [...active.acknowledged].filter((k) => !present.has(k));
        assert.deepEqual(lost, [], 'acknowledged writes lost');
        assert.deepEqual(await check.query('SELECT count(*) AS n FROM t WHERE k < ?', [preloaded]).all(),
            [{ n: preloaded }]);
        await expectSamePages(live);
        const failedCatchUps = log.lines().filter((l) => l.includes('catch-up failed'));
        const snapshotsSent = log.lines().filter((l) => l.includes('sending snapshot')).length;
        assert.ok(snapshotsSent >= 2, `the joiners caught up from snapshots (${snapshotsSent} sent)\n`
            + log.lines().filter((l) => l.includes('snapshot')).slice(-20).join('\n'));
        console.log(`join under load: ${active.acknowledged.size} writes acknowledged, ${active.reads} reads, `
            + `${active.errors.length} failed requests during joins/handover, ${snapshotsSent} snapshots sent, `
            + `${failedCatchUps.length} failed catch-ups`);
        for (const line of [...active.errors.slice(0, 5), ...failedCatchUps.slice(0, 5)]) console.log(`  ${line}`);
    } finally {
        await load?.stop();
        for (const db of dbs) await db.close().catch(() => undefined);
        for (const n of nodes) await n.close();
        dir.remove();
    }
    try {
        await leftovers.settled('join under load');
    } finally {
        leftovers.stop();
    }
});
