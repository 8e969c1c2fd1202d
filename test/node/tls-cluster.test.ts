// Goal: createNode({ tls }) runs a whole cluster under go-dqlite's cluster TLS: the gateway
// requires the cluster certificate (mutual TLS), raft traffic between nodes and the role
// manager's joins go over TLS, and tqlite's client connects with `tls`; a client without a
// certificate gets nothing. Method: three createNode() nodes on loopback with the test
// certificate of test/server/fixtures (certificate, key and CA at once), two joining the
// first; a write through the leader is read back, the cluster has three voters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { freeLoopbackPort } from '../../src/lib/net.js';

const FIXTURES = fileURLToPath(new URL('../../../test/server/fixtures/', import.meta.url));
const cert = readFileSync(join(FIXTURES, 'cluster-cert.pem'));
const key = readFileSync(join(FIXTURES, 'cluster-key.pem'));
const tls = { cert, key, ca: cert };

test('a three-node cluster under mutual TLS: joins, replicates, refuses plain clients', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tqlite-tls-cluster-'));
    const nodes: TqliteNode[] = [];
    try {
        const addresses = await Promise.all([0, 1, 2].map(async () => `127.0.0.1:${await freeLoopbackPort()}`));
        for (const [i, address] of addresses.entries()) {
            nodes.push(await createNode({
                address, dataDir: join(root, `n${i}`), tickMs: 20, tls,
                join: i === 0 ? [] : [addresses[0] as string],
                roles: { joinRetryMs: 100, adjustIntervalMs: 200 },
            }));
        }
        const first = nodes[0] as TqliteNode;
        const deadline = Date.now() + 30_000;
        const voters = (): number => first.status().configuration.servers.filter((s) => s.role === 'voter').length;
        while (voters() < 3) {
            if (Date.now() > deadline) {
                assert.fail(`only ${voters()} voters: ${first.status().configuration.servers
                    .map((s) => `${s.id} ${s.role} ${s.address}`).join(', ')}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const db = await connect({ servers: addresses, database: 'tls', timeoutMs: 10_000, tls });
        try {
            await db.exec('CREATE TABLE t (x TEXT)');
            await db.exec('INSERT INTO t VALUES (?)', ['over tls']);
            assert.deepEqual((await db.query('SELECT x FROM t').all()).map((r) => r.x), ['over tls']);
        } finally {
            await db.close();
        }
        // Without TLS (the gateway expects a TLS handshake) and with TLS but no client
        // certificate (mutual TLS refuses it), nothing is served.
        for (const options of [undefined, { ca: cert }]) {
            await assert.rejects(connect({ servers: addresses, database: 'tls', timeoutMs: 1_500, tls: options }),
                { code: 'ERR_TIMEOUT', message: /no leader found/ });
        }
    } finally {
        for (const node of nodes.reverse()) await node.close();
        rmSync(root, { recursive: true, force: true });
    }
});
