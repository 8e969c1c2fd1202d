// Goal: issue 5's acceptance check with the real pieces: the go-dqlite shell against a real
// tqlite node (createNode: raft, log, SQLite worker and this gateway) prints what it prints
// against a real dqlite node (dqlite-demo, libdqlite 1.11.1), node ids and addresses aside.
// Method: a one-node tqlite cluster in a temporary directory and a dqlite-demo node; the shared
// shell script of helpers/shell.ts runs against both, one `dqlite` process per command, and the
// outputs are compared after normalisation. DUMP is checked on its own (tqlite's image is
// consolidated, as dqlite HEAD's, so its bytes differ from dqlite 1.11.1's main file + WAL).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode } from '../../src/index.js';
import type { TqliteNode } from '../../src/index.js';
import { DEMO, freePort, normalise, runScript, shell, waitForPort } from './helpers/shell.js';
import type { Run } from './helpers/shell.js';

let dir = '';
let node: TqliteNode;
let address = '';
let tqlite: Map<string, Run>;

before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tqlite-node-shell-'));
    address = `127.0.0.1:${await freePort()}`;
    node = await createNode({ address, dataDir: join(dir, 'data') });
});

after(async () => {
    await node.close();
    rmSync(dir, { recursive: true, force: true });
});

test('the go-dqlite shell runs the script against a real tqlite node', async () => {
    const cwd = join(dir, 'tq');
    mkdirSync(cwd);
    tqlite = await runScript(address, cwd);
    const get = (label: string): Run => tqlite.get(label) as Run;
    assert.equal(get('create').code, 0, get('create').stderr);
    assert.equal(get('select big').stdout.trimEnd().split('\n').length, 10_000);
    assert.equal(get('count').stdout, '10000|50005000\n');
    assert.equal(get('cluster').stdout, `${node.id.toString(16)}|${address}|voter\n`);
    assert.equal(get('leader').stdout, `${address}\n`);
});

test('and prints the same as against dqlite-demo', { skip: !existsSync(DEMO) && 'no dqlite-demo' }, async () => {
    assert.ok(tqlite !== undefined, 'the tqlite run comes first');
    const port = await freePort();
    const demoDir = join(dir, 'demo-data');
    mkdirSync(demoDir);
    const demo: ChildProcess = spawn(DEMO, ['--api', `127.0.0.1:${await freePort()}`, '--db', `127.0.0.1:${port}`,
        '--dir', demoDir], { stdio: 'ignore' });
    try {
        await waitForPort(port, 20_000);
        const cwd = join(dir, 'real');
        mkdirSync(cwd);
        const demoAddress = `127.0.0.1:${port}`;
        const real = await runScript(demoAddress, cwd);
        const ids = ['2dc171858c3155be', node.id.toString(16)];
        for (const [label, run] of real) {
            if (label === 'dump') continue; // see the DUMP test below
            const ours = tqlite.get(label) as Run;
            assert.equal(normalise(ours.stdout, address, ids), normalise(run.stdout, demoAddress, ids),
                `stdout of "${label}"`);
            assert.equal(normalise(ours.stderr, address, ids), normalise(run.stderr, demoAddress, ids),
                `stderr of "${label}"`);
            assert.equal(ours.code, run.code, `exit code of "${label}"`);
        }
    } finally {
        demo.kill('SIGTERM');
        await new Promise((resolve) => demo.once('exit', resolve));
    }
});

test('.dump of a database written by the shell', async () => {
    const cwd = join(dir, 'dump');
    mkdirSync(cwd);
    const dumped = await shell(address, 'shell', `.dump ${address} shell`, cwd);
    assert.equal(dumped.stdout, 'OK\n', dumped.stderr);
});
