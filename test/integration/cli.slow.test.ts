// Goal: the tqlite command works as real processes: `tqlite demo` runs to the end, and three
// `tqlite node` processes form a cluster that go-dqlite's own `dqlite` shell can use, and stop
// with exit code 0 on SIGTERM (handover).
// Method: child processes of the compiled CLI on 127.0.0.1 ports picked free, temporary data
// directories, the Debian `dqlite` binary (installed by .ci/run); every wait has a deadline and
// every process started here is killed in the finally block.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAdminClient } from '../../src/client/index.js';
import { freePort, tempDir, waitFor } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

function run(file: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return new Promise((resolve) => {
        execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
            const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
            resolve({ code, stdout, stderr });
        });
    });
}

test('tqlite demo runs to the end', async () => {
    const result = await run(process.execPath, [MAIN, 'demo'], 120_000);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /the third join promoted two spares: voter, voter, voter/);
    assert.match(result.stdout, /new leader .* after [0-9.]+ s/);
    assert.match(result.stdout, /apple,pear,plum,fig/);
});

test('three tqlite node processes serve the go-dqlite shell and stop cleanly on SIGTERM', async (t) => {
    if (!existsSync('/usr/bin/dqlite')) {
        t.skip('the dqlite shell (Debian go-dqlite) is not installed; .ci/run installs it');
        return;
    }
    const dir = tempDir('cli');
    const addresses: string[] = [];
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const children: ChildProcess[] = [];
    const exits: Promise<number | null>[] = [];
    const admin = createAdminClient({ servers: addresses, timeoutMs: 5_000 });
    try {
        for (let i = 0; i < 3; i++) {
            const args = [MAIN, 'node', '--address', addresses[i] as string, '--data', join(dir.path, `n${i}`)];
            if (i > 0) args.push('--join', addresses[0] as string);
            const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
            child.stderr?.resume();
            children.push(child);
            exits.push(new Promise((resolve) => child.once('exit', (code) => resolve(code))));
            if (i === 0) await waitFor('the first leader', 15_000, async () => (await admin.leader()) ?? undefined);
        }
        await waitFor('three voters', 20_000, async () => {
            const members = await admin.cluster();
            return members.filter((m) => m.role === 'voter').length === 3 ? true : undefined;
        });
        const servers = addresses.join(',');
        const create = await run('/usr/bin/dqlite', ['-s', servers, 'app',
            'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES (\'one\'); '
            + 'INSERT INTO t (v) VALUES (\'two\')']);
        assert.equal(create.code, 0, create.stderr);
        const select = await run('/usr/bin/dqlite', ['-s', servers, 'app', 'SELECT id, v FROM t ORDER BY id']);
        assert.equal(select.code, 0, select.stderr);
        assert.deepEqual(select.stdout.trim().split('\n'), ['1|one', '2|two']);
        const cluster = await run('/usr/bin/dqlite', ['-s', servers, 'app', '.cluster']);
        const voters = cluster.stdout.trim().split('\n').filter((l) => l.endsWith('|voter'));
        assert.equal(voters.length, 3, cluster.stdout);

        for (let i = 0; i < 3; i++) {
            (children[i] as ChildProcess).kill('SIGTERM');
            assert.equal(await exits[i], 0, `node ${i} exit code`);
        }
    } finally {
        await admin.close();
        for (const child of children) {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
        await Promise.all(exits);
        dir.remove();
    }
});
