// Goal: the go-dqlite shell against a real three-node tqlite cluster: `.cluster` lists three
// voters from any node, `.leader` from a follower names the leader, SQL sent to any node goes
// to the leader (LEADER redirect) and is seen from every node, and `.remove` takes a node out.
// Method: three createNode() nodes on free ports (two join the first); each command is one
// `dqlite` process; waiting for the cluster to form polls `.cluster` with an attempt bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode } from '../../src/index.js';
import type { TqliteNode } from '../../src/index.js';
import { freePort, shell } from './helpers/shell.js';

let dir = '';
let cwd = '';
const nodes: TqliteNode[] = [];
const addresses: string[] = [];

before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tqlite-cluster-shell-'));
    cwd = join(dir, 'cwd');
    mkdirSync(cwd);
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    for (let i = 0; i < 3; i++) {
        const join_ = i === 0 ? [] : [addresses[0] as string];
        nodes.push(await createNode({ address: addresses[i] as string, dataDir: join(dir, `n${i}`), join: join_ }));
    }
});

after(async () => {
    for (const node of [...nodes].reverse()) await node.close();
    rmSync(dir, { recursive: true, force: true });
});

async function run(address: string, command: string): Promise<string> {
    const result = await shell(address, 'cluster', command, cwd);
    assert.equal(result.stderr, '', `${command} on ${address}`);
    return result.stdout;
}

test('three voters, leader redirect, reads on every node, .remove', { timeout: 120_000 }, async () => {
    let cluster = '';
    for (let attempt = 0; (cluster.match(/\|voter$/gm) ?? []).length < 3; attempt++) {
        assert.ok(attempt < 300, `the cluster did not form: ${cluster}`);
        cluster = (await shell(addresses[1] as string, 'cluster', '.cluster', cwd)).stdout;
    }
    const lines = cluster.trimEnd().split('\n').sort();
    assert.deepEqual(lines, nodes.map((n) => `${n.id.toString(16)}|${n.address}|voter`).sort());
    const leader = (await run(addresses[2] as string, '.leader')).trim();
    assert.ok(addresses.includes(leader), leader);
    const followers = addresses.filter((a) => a !== leader);
    await run(followers[0] as string, 'CREATE TABLE t (x TEXT)');
    await run(followers[1] as string, "INSERT INTO t VALUES ('from a follower')");
    for (const address of addresses) {
        assert.equal(await run(address, 'SELECT x FROM t'), 'from a follower\n', `read via ${address}`);
    }
    const removed = followers[1] as string;
    await run(leader, `.remove ${removed}`);
    const after_ = await run(leader, '.cluster');
    assert.equal(after_.includes(removed), false, after_);
    assert.equal(after_.trimEnd().split('\n').length, 2);
});
