// Goal: a tqlite node and a 3-node cluster work end to end in one process: SQL through the
// client library, replication of pages to every node (byte-identical digests, integrity ok),
// durability across a restart, failover to a new leader after the leader stops, and close()
// leaving no handle behind.
// Method: real createNode() nodes on 127.0.0.1 with fresh temporary directories, formed by hand
// (bootstrap + ADD/ASSIGN through the leader); the client from src/client; deadlines on every
// wait, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { freePort, memoryLogger, startCluster, tempDir, waitFor } from './helpers.js';
import { Leftovers } from '../node/leftovers.js';

function digests(inspection: Awaited<ReturnType<import('../../src/index.js').TqliteNode['inspect']>>): string[] {
    return inspection.databases.map((d) => `${d.database}:${d.sha256}:${d.integrity}`);
}

test('one node: SQL works and the data survives a restart', async () => {
    const dir = tempDir('single');
    const address = `127.0.0.1:${await freePort()}`;
    try {
        let node = await createNode({ address, dataDir: dir.path });
        const db = await connect({ servers: [address], database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
        for (let i = 0; i < 50; i++) await db.exec('INSERT INTO t (v) VALUES (?)', [`v${i}`]);
        assert.deepEqual(await db.query('SELECT count(*) AS n FROM t').all(), [{ n: 50 }]);
        // A negative rowid travels as i64 (it once tripped the gateway's encoder).
        assert.equal((await db.exec('INSERT INTO t (id, v) VALUES (-1, ?)', ['neg'])).lastInsertId, -1);
        await db.exec('DELETE FROM t WHERE id = -1');
        await db.close();
        const before = digests(await node.inspect());
        await node.close();

        node = await createNode({ address, dataDir: dir.path });
        const again = await connect({ servers: [address], database: 'app', timeoutMs: 20_000 });
        assert.deepEqual(await again.query('SELECT count(*) AS n FROM t').all(), [{ n: 50 }]);
        assert.deepEqual(digests(await node.inspect()), before);
        await again.close();
        await node.close();
    } finally {
        dir.remove();
    }
});

test('three nodes: pages replicate identically, and a new leader takes over', async () => {
    const cluster = await startCluster(3);
    try {
        const db = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r BLOB, at TEXT)');
        for (let i = 0; i < 30; i++) {
            await db.exec("INSERT INTO t (v, r, at) VALUES (?, randomblob(64), datetime('now'))", [`v${i}`]);
        }
        const leader = cluster.leader();
        assert.ok(leader !== undefined);
        const applied = leader.status().commitIndex;
        await waitFor('followers to apply', 10_000, () =>
            cluster.nodes.every((n) => (n?.status().appliedIndex ?? 0) >= applied) ? true : undefined);
        const all = await Promise.all(cluster.nodes.map(async (n) => digests(await (n as TqliteNode).inspect())));
        assert.equal(all[0]?.length, 1);
        for (const d of all) assert.deepEqual(d, all[0]);
        assert.match(all[0]?.[0] ?? '', /:ok$/);

        // The leader stops; the other two elect a leader and keep every acknowledged row.
        const index = cluster.nodes.indexOf(leader);
        await leader.close();
        cluster.nodes[index] = undefined;
        const next = await waitFor('a new leader', 10_000, () => cluster.leader());
        assert.notEqual(next.id, leader.id);
        await db.exec('INSERT INTO t (v) VALUES (?)', ['after failover']);
        assert.deepEqual(await db.query('SELECT count(*) AS n FROM t').all(), [{ n: 31 }]);
        await db.close();
    } finally {
        await cluster.close();
    }
});

test('closed nodes leave no sockets, timers or workers behind', async () => {
    const leftovers = await Leftovers.baseline();
    const cluster = await startCluster(3);
    const db = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
    await db.exec('CREATE TABLE t (x)');
    await db.close();
    await cluster.close();
    try {
        await leftovers.settled('closed cluster');
    } finally {
        leftovers.stop();
    }
});

test('formation: bootstrap, then two joins, ends with three voters (the third join promotes two)', async () => {
    const dir = tempDir('join');
    const addresses: string[] = [];
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const nodes: TqliteNode[] = [];
    try {
        nodes.push(await createNode({ address: addresses[0] as string, dataDir: `${dir.path}/n1` }));
        for (const i of [1, 2]) {
            nodes.push(await createNode({ address: addresses[i] as string, dataDir: `${dir.path}/n${i + 1}`,
                join: [addresses[0] as string] }));
        }
        const roles = await waitFor('three voters', 15_000, () => {
            const leader = nodes.find((n) => n.status().role === 'leader');
            const servers = leader?.status().configuration.servers ?? [];
            return servers.length === 3 && servers.every((s) => s.role === 'voter') ? servers : undefined;
        });
        assert.equal(roles.length, 3);
        // Handover: the leader gives leadership away before it stops.
        const leader = nodes.find((n) => n.status().role === 'leader');
        assert.ok(leader !== undefined);
        await leader.close();
        const next = await waitFor('the next leader', 5_000, () => nodes.find((n) => n !== leader
            && n.status().role === 'leader'));
        assert.notEqual(next.id, leader.id);
    } finally {
        for (const n of nodes) await n.close();
        dir.remove();
    }
});

test('snapshots: the log is compacted, a follower behind the compaction catches up from a snapshot', async () => {
    const snapshot = { thresholdEntries: 20, trailingEntries: 5 };
    const log = memoryLogger('debug', 50_000);
    const cluster = await startCluster(3, { snapshot, logger: log.logger });
    try {
        const db = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (k INTEGER, b BLOB)');
        for (let k = 0; k < 40; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(200))', [k]);
        const followerIndex = cluster.nodes.findIndex((n) => n !== undefined && n.status().role !== 'leader');
        const follower = cluster.nodes[followerIndex] as TqliteNode;
        const stoppedAt = follower.status().appliedIndex;
        await follower.close();
        cluster.nodes[followerIndex] = undefined;
        for (let k = 40; k < 120; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(200))', [k]);
        const leader = cluster.leader() as TqliteNode;
        assert.ok(leader.status().appliedIndex > stoppedAt + 60, 'the log moved far past the stopped follower');

        await cluster.start(followerIndex, { snapshot });
        const target = leader.status().appliedIndex;
        await waitFor('the follower to catch up', 15_000, () =>
            ((cluster.nodes[followerIndex] as TqliteNode).status().appliedIndex >= target ? true : undefined))
            .catch((error: unknown) => {
                const statuses = cluster.nodes.map((n) => {
                    const s = n?.status();
                    return `${s?.role} term=${s?.term} commit=${s?.commitIndex} applied=${s?.appliedIndex} `
                        + `last=${s?.lastIndex}`;
                });
                assert.fail(`${String(error)}; target ${target}; follower ${followerIndex}\n${statuses.join('\n')}\n`
                    + log.lines().slice(-120).join('\n'));
            });
        // It caught up from a snapshot, not from the log alone (the log was compacted behind it).
        assert.ok(log.lines().some((l) => l.includes('sending snapshot')), 'no snapshot was sent');
        const all = await Promise.all(cluster.nodes.map(async (n) => digests(await (n as TqliteNode).inspect())));
        for (const d of all) assert.deepEqual(d, all[0]);
        assert.deepEqual(await db.query('SELECT count(*) AS n FROM t').all(), [{ n: 120 }]);
        await db.close();

        // Everything restarts from disk (snapshots + compacted logs) with the same data.
        for (let i = 0; i < 3; i++) {
            await (cluster.nodes[i] as TqliteNode).close();
            cluster.nodes[i] = undefined;
        }
        for (let i = 0; i < 3; i++) await cluster.start(i, { snapshot });
        const again = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
        assert.deepEqual(await again.query('SELECT count(*) AS n FROM t').all(), [{ n: 120 }]);
        await again.close();
    } finally {
        await cluster.close();
    }
});
