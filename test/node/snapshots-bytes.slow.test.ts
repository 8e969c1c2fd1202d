// Goal: with large transactions the log is bounded in bytes (src/node/snapshots.ts): a
// snapshot is taken once thresholdBytes of entries were applied although far fewer than
// thresholdEntries entries were, only trailingBytes of log stay behind it, and a follower that
// was stopped meanwhile catches up from the snapshot; every node ends byte-identical.
// Method: a 3-node cluster of real nodes in this process (test/integration/helpers.ts) with a
// 256 KiB snapshot threshold and a 64 KiB trailing budget, rows of 32 KiB random blobs (each
// transaction's entry holds ~9 pages of 4 KiB); the "snapshot taken" log lines tell the index
// and how many entries were kept. Deadlines on every wait, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import type { TqliteNode } from '../../src/index.js';
import { memoryLogger, startCluster, waitFor } from '../integration/helpers.js';

const KiB = 1024;

function snapshotLines(lines: readonly string[]): { index: number; keep: number; durable: number }[] {
    return lines.filter((l) => l.includes('"snapshot taken"')).map((l) => {
        const o = JSON.parse(l) as { index: number; keep: number; durable: number };
        return { index: o.index, keep: o.keep, durable: o.durable };
    });
}

test('large entries: snapshots by bytes, a byte-bounded trailing log, catch-up from a snapshot', async () => {
    const snapshot = { thresholdEntries: 100_000, trailingEntries: 8192, thresholdBytes: 256 * KiB,
        trailingBytes: 64 * KiB };
    const log = memoryLogger('info', 2000);
    const cluster = await startCluster(3, { snapshot, logger: log.logger });
    try {
        const db = await connect({ servers: cluster.addresses, database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        for (let k = 0; k < 20; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(?))', [k, 32 * KiB]);
        const leader = cluster.leader() as TqliteNode;
        await waitFor('a snapshot taken by bytes', 15_000, async () =>
            (snapshotLines(log.lines()).length > 0 ? true : undefined));
        for (const s of snapshotLines(log.lines())) {
            // ~36 KiB per entry: one fits in the 64 KiB budget (two, if one is small), unless the
            // state machine's durable index was behind: entries after it always stay.
            assert.ok(s.keep <= Math.max(2, s.index - s.durable),
                `kept ${s.keep} entries behind snapshot ${s.index} (durable ${s.durable})`);
        }

        const followerIndex = cluster.nodes.findIndex((n) => n !== undefined && n.status().role !== 'leader');
        const follower = cluster.nodes[followerIndex] as TqliteNode;
        const stoppedAt = follower.status().appliedIndex;
        await follower.close();
        cluster.nodes[followerIndex] = undefined;
        for (let k = 20; k < 40; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(?))', [k, 32 * KiB]);
        assert.ok(leader.status().appliedIndex > stoppedAt + 15, 'the log moved well past the stopped follower');
        const leaderSnapshots = snapshotLines(log.lines()).filter((s) => s.index > stoppedAt + 2);
        assert.ok(leaderSnapshots.length > 0, 'a snapshot beyond what the follower has (it needs the snapshot)');

        await cluster.start(followerIndex, { snapshot, logger: log.logger });
        const target = leader.status().appliedIndex;
        await waitFor('the follower to catch up', 20_000, async () =>
            ((cluster.nodes[followerIndex] as TqliteNode).status().appliedIndex >= target ? true : undefined));
        const digests = await Promise.all(cluster.nodes.map(async (n) =>
            (await (n as TqliteNode).inspect()).databases.map((d) => `${d.database}:${d.sha256}:${d.integrity}`)));
        for (const d of digests) assert.deepEqual(d, digests[0]);
        assert.deepEqual(await db.query('SELECT count(*) AS n, sum(length(b)) AS bytes FROM t').all(),
            [{ n: 40, bytes: 40 * 32 * KiB }]);
        await db.close();
    } finally {
        await cluster.close();
    }
});
