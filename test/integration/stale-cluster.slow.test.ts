// Goal: a stale node of an old cluster cannot take part in a new cluster bootstrapped at an
// address it still knows. Cluster A (3 nodes) loses its first and third nodes for good, without
// a handover; its second node keeps running and campaigning for A. A new cluster B bootstraps
// a fresh node at A's first address. B's node must refuse everything A's node sends (it is
// addressed to A's first node, whose id B's node does not share), before and after a restart
// of B's node (when it is out of lease: the moment a vote could have been granted), and B must
// stay B: one voter, its own table, none of A's.
// Method: createNode() nodes in this process; B's logs in memory, and the refusal observed as
// the peer transport's "message for node <A's first id>" protocol-violation line, waited for
// with a deadline (no sleeps); the project's Leftovers check after everything closed (no socket,
// timer or worker thread left behind by the closes and the restart). Before node ids were
// random (the bootstrap node took go-dqlite's fixed BootstrapID in both clusters), A's
// pre-votes reached B's raft instead.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { Leftovers } from '../node/leftovers.js';
import { memoryLogger, startCluster, tempDir, waitFor } from './helpers.js';

test('a stale node of an old cluster is refused by a new cluster at its old peer\'s address', async () => {
    const leftovers = await Leftovers.baseline();
    const a = await startCluster(3, { handover: false });
    const dir = tempDir('stale-b');
    const log = memoryLogger('warn', 2000);
    let b: TqliteNode | undefined;
    try {
        const [a1, a2, a3] = a.nodes as TqliteNode[];
        assert.ok(a1 !== undefined && a2 !== undefined && a3 !== undefined);
        const dbA = await connect({ servers: a.addresses, database: 'app', timeoutMs: 20_000 });
        await dbA.exec('CREATE TABLE a_only (x)');
        await dbA.close();
        const a1Id = a1.id;
        // A's first and third nodes go away for good; the second keeps trying to reach them.
        await a1.close();
        await a3.close();
        a.nodes[0] = undefined;
        a.nodes[2] = undefined;

        const startB = (): Promise<TqliteNode> => createNode({ address: a.addresses[0] as string,
            dataDir: join(dir.path, 'b1'), join: [], logger: log.logger, handover: false });
        b = await startB();
        assert.notEqual(b.id, a1Id, 'two clusters\' first nodes share an id');
        const dbB = await connect({ servers: [b.address], database: 'app', timeoutMs: 20_000 });
        await dbB.exec('CREATE TABLE b_only (y)');
        await dbB.close();

        const refusals = (): number => log.lines().filter((l) =>
            l.includes('peer protocol violation') && l.includes(`message for node ${a1Id}`)).length;
        await waitFor('B to refuse A\'s messages', 20_000, () => (refusals() >= 2 ? true : undefined));

        // Restarted, B's node is out of lease: still nothing of A's gets in.
        await b.close();
        b = undefined;
        const before = refusals();
        b = await startB();
        await waitFor('B to refuse A\'s messages after its restart', 20_000, () =>
            (refusals() >= before + 2 ? true : undefined));
        const status = b.status();
        assert.equal(status.role, 'leader');
        assert.deepEqual(status.configuration.servers.map((s) => s.id), [b.id]);
        assert.notEqual(a2.status().role, 'leader', 'A\'s stale node won an election');
        const check = await connect({ servers: [b.address], database: 'app', timeoutMs: 20_000 });
        try {
            const tables = await check.query<{ name: string }>(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
            assert.deepEqual(tables.map((t) => t.name), ['b_only']);
        } finally {
            await check.close();
        }
    } catch (error) {
        process.stderr.write(`B's log (last lines):\n${log.lines().slice(-40).join('\n')}\n`);
        throw error;
    } finally {
        await b?.close();
        await a.close();
        dir.remove();
    }
    try {
        await leftovers.settled('stale-cluster');
    } finally {
        leftovers.stop();
    }
});
