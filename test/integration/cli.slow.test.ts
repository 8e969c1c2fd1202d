// Goal: the tqlite command works as real processes: `tqlite demo` runs to the end, three
// `tqlite node` processes form a cluster that go-dqlite's own `dqlite` shell can use, and stop
// with exit code 0 on SIGTERM (handover); a node started with the TLS flags serves `tqlite shell`
// and `tqlite cluster` given the same flags, and nobody without them.
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

test('the TLS flags: a node started with --cert/--key/--ca serves shell and cluster given the same', async () => {
    const fixtures = fileURLToPath(new URL('../../../test/server/fixtures/', import.meta.url));
    const flags = ['--cert', join(fixtures, 'cluster-cert.pem'), '--key', join(fixtures, 'cluster-key.pem'),
        '--ca', join(fixtures, 'cluster-cert.pem')];
    const dir = tempDir('cli-tls');
    const address = `127.0.0.1:${await freePort()}`;
    const args = [MAIN, 'node', '--address', address, '--data', join(dir.path, 'n1'), ...flags];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
        const shell = (args: string[]): Promise<RunResult> => run(process.execPath, [MAIN, 'shell', '-s', address,
            '--timeout', '2000', ...args], 20_000);
        await waitFor('the node to answer over TLS', 15_000, async () =>
            ((await shell([...flags, 'app', 'SELECT 1'])).code === 0 ? true : undefined));
        const write = await shell([...flags, 'app', 'CREATE TABLE t (x); INSERT INTO t VALUES (42)']);
        assert.equal(write.code, 0, write.stderr);
        const read = await shell([...flags, '--format', 'json', 'app', 'SELECT x FROM t']);
        assert.equal(read.code, 0, read.stderr);
        assert.match(read.stdout, /42/);
        const status = await run(process.execPath, [MAIN, 'cluster', '-s', address, ...flags, '--json', 'status']);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, new RegExp(address.replace(/\./g, '\\.')));
        // Without the certificate the node is unreachable: the shell fails, nothing is written.
        const plain = await shell(['app', 'INSERT INTO t VALUES (7)']);
        assert.notEqual(plain.code, 0, 'a client without the cluster certificate was served');
        // Only some of the three flags: refused before connecting.
        const partial = await shell(['--cert', flags[1] as string, 'app', 'SELECT 1']);
        assert.notEqual(partial.code, 0);
        assert.match(partial.stderr, /cert|key|ca/i);
        const again = await shell([...flags, '--format', 'json', 'app', 'SELECT count(*) AS n FROM t']);
        assert.match(again.stdout, /"n":\s*1\b|\b1\b/);
        child.kill('SIGTERM');
        assert.equal(await exit, 0, 'node exit code');
    } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exit;
        dir.remove();
    }
});
