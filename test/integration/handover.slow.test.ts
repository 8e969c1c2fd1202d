// Goal: closing nodes one after another keeps a 5-node cluster serving with the roles it wants
// among the nodes still running: a closing standby's role goes to the spare and a closing
// voter's to the standby by the node's own handover, before its close() returns (the leader's
// adjustment, at its 10-minute interval here, plays no part); a closing leader's leadership
// goes to another voter; every write acknowledged in between is there at the end.
// Method: five createNode() nodes in this process (roles: 3 voters, 1 standby, so one spare,
// adjustIntervalMs 10 minutes); node.status() for the configuration; the client for a write
// after each close; deadlines on every wait, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { freePort, tempDir, waitFor } from './helpers.js';

function rolesOf(nodes: readonly (TqliteNode | undefined)[]): Map<bigint, string> {
    const leader = nodes.find((n) => n !== undefined && n.status().role === 'leader');
    return new Map((leader?.status().configuration.servers ?? []).map((s) => [s.id, s.role]));
}

/** Closes `leaving`; by then (its handover), among the others, `taker` holds `role` and `leaving` is a spare. */
async function closeAndReplace(live: readonly TqliteNode[], leaving: TqliteNode, taker: TqliteNode,
    role: 'voter' | 'standby'): Promise<TqliteNode[]> {
    await leaving.close();
    const rest = live.filter((n) => n !== leaving);
    const roles = rolesOf(rest);
    assert.equal(roles.get(taker.id), role, `the ${role} role moved to the replacement during close()`);
    assert.equal(roles.get(leaving.id), 'spare', 'the closed node demoted itself during close()');
    return rest;
}

test('closing a standby, a voter, then the leader: roles move to the nodes left, writes go on', async () => {
    const roles = { voters: 3, standbys: 1, adjustIntervalMs: 600_000 };
    const dir = tempDir('handover');
    const addresses: string[] = [];
    for (let i = 0; i < 5; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const nodes: TqliteNode[] = [];
    try {
        for (let i = 0; i < 5; i++) {
            nodes.push(await createNode({ address: addresses[i] as string, dataDir: join(dir.path, `n${i}`), roles,
                join: i === 0 ? [] : [addresses[0] as string] }));
        }
        const count = (role: string): number => [...rolesOf(nodes).values()].filter((r) => r === role).length;
        await waitFor('3 voters, 1 standby, 1 spare', 30_000, () =>
            (count('voter') === 3 && count('standby') === 1 && count('spare') === 1 ? true : undefined));
        const db = await connect({ servers: addresses, database: 'app', timeoutMs: 20_000 });
        await db.exec('CREATE TABLE t (x)');
        const layout = rolesOf(nodes);
        const standby = nodes.find((n) => layout.get(n.id) === 'standby') as TqliteNode;
        const spare = nodes.find((n) => layout.get(n.id) === 'spare') as TqliteNode;

        // 1. The standby closes: the spare becomes standby.
        const live1 = await closeAndReplace(nodes, standby, spare, 'standby');
        await db.exec('INSERT INTO t VALUES (1)');

        // 2. A voter that does not lead closes: the standby (the former spare) becomes voter.
        const voter = live1.find((n) => rolesOf(live1).get(n.id) === 'voter' && n.status().role !== 'leader');
        assert.ok(voter !== undefined);
        const live2 = await closeAndReplace(live1, voter, spare, 'voter');
        await db.exec('INSERT INTO t VALUES (2)');

        // 3. The leader closes: leadership moves to another voter (nobody is left to take its vote).
        const leader = live2.find((n) => n.status().role === 'leader');
        assert.ok(leader !== undefined);
        await leader.close();
        const live3 = live2.filter((n) => n !== leader);
        await waitFor('a new leader', 10_000, () => live3.find((n) => n.status().role === 'leader'));
        await db.exec('INSERT INTO t VALUES (3)');
        assert.deepEqual(await db.query('SELECT x FROM t ORDER BY x').all(), [{ x: 1 }, { x: 2 }, { x: 3 }]);
        await db.close();
    } finally {
        for (const n of nodes) await n.close();
        dir.remove();
    }
});
