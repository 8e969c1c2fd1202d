// Goal: one node per data directory. A second node on a directory that a running node holds is
// refused with a StorageError before it touches anything (in the same process and from another
// process), the first keeps working, and a claim left by a process that is gone (kill -9) does
// not stop the next start (nor does a LOCK file of the first version whose owner is gone).
// The data directory (with missing parents) and the lock are made through the node's `fs`.
// Method: createNode() on temporary directories; the other process is a child (`sleep`) whose
// claim `LOCK/<pid>.<start time>` the test writes, then the same child once it has exited. The
// file-system operations are recorded by a wrapper of the real file system passed as `fs`.
// (Claimants racing for one directory: dir-lock-race.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode } from '../../src/index.js';
import { processStartTime as startTimeOf } from '../../src/node/dir-lock.js';
import { freeLoopbackPort } from '../../src/lib/net.js';
import { hookedFs } from './hooked-fs.js';
import { writeAndRead } from './leftovers.js';

const TICK_MS = 20;

async function address(): Promise<string> {
    return `127.0.0.1:${await freeLoopbackPort()}`;
}

test('a second node on a directory held in this process is refused; the first keeps working', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    try {
        const firstAddress = await address();
        const first = await createNode({ address: firstAddress, dataDir, tickMs: TICK_MS });
        try {
            const other = await address();
            await assert.rejects(createNode({ address: other, dataDir, tickMs: TICK_MS }),
                { code: 'ERR_STORAGE', message: /already open in this process/ });
            assert.deepEqual(await writeAndRead(first.address, 'lock', 1), [1]);
        } finally {
            await first.close();
        }
        assert.deepEqual(readdirSync(join(dataDir, 'LOCK')), [], 'close() leaves no claim');
        // The same address: the cluster configuration in the directory names it.
        const again = await createNode({ address: firstAddress, dataDir, tickMs: TICK_MS });
        try {
            assert.deepEqual(await writeAndRead(again.address, 'lock', 2), [1, 2]);
        } finally {
            await again.close();
        }
    } finally {
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a claim of a live process refuses the start; once that process is gone it is taken over', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
        const pid = holder.pid as number;
        const claim = `${pid}.${startTimeOf(pid)}`;
        mkdirSync(join(dataDir, 'LOCK'));
        writeFileSync(join(dataDir, 'LOCK', claim), '');
        await assert.rejects(createNode({ address: await address(), dataDir, tickMs: TICK_MS }),
            { code: 'ERR_STORAGE', message: new RegExp(`in use by process ${pid}`) });
        assert.deepEqual(readdirSync(join(dataDir, 'LOCK')), [claim],
            'a refused start leaves only the holder\'s claim');
        const exited = new Promise((resolve) => holder.once('exit', resolve));
        holder.kill('SIGKILL');
        await exited;
        // The same claim, but its process is gone: stale, and removed.
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS });
        try {
            assert.deepEqual(await writeAndRead(node.address, 'lock', 3), [3]);
            assert.deepEqual(readdirSync(join(dataDir, 'LOCK')), [`${process.pid}.${startTimeOf(process.pid)}`]);
        } finally {
            await node.close();
        }
    } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a claim naming a live PID with another start time (a reused PID) is stale', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    try {
        mkdirSync(join(dataDir, 'LOCK'));
        writeFileSync(join(dataDir, 'LOCK', `${process.ppid}.1`), '');
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS });
        await node.close();
    } finally {
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a LOCK file of the first version: refused while its process lives, replaced once it is gone', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
        const pid = holder.pid as number;
        writeFileSync(join(dataDir, 'LOCK'), `${pid} ${startTimeOf(pid)}\n`);
        await assert.rejects(createNode({ address: await address(), dataDir, tickMs: TICK_MS }),
            { code: 'ERR_STORAGE', message: new RegExp(`in use by process ${pid}`) });
        const exited = new Promise((resolve) => holder.once('exit', resolve));
        holder.kill('SIGKILL');
        await exited;
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS });
        await node.close();
        assert.deepEqual(readdirSync(join(dataDir, 'LOCK')), []);
    } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('the data directory, its missing parents and the lock are made through options.fs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    try {
        const dataDir = join(root, 'a', 'b');
        const ops: string[] = [];
        const fs = hookedFs((op, path) => {
            if (!path.startsWith(join(dataDir, 'raft')) && !path.startsWith(join(dataDir, 'info'))) {
                ops.push(`${op} ${path.slice(root.length)}`);
            }
        });
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS, fs });
        await node.close();
        const claim = `/a/b/LOCK/${process.pid}.${startTimeOf(process.pid)}`;
        const before = ops.indexOf(`open ${claim}`);
        assert.deepEqual(ops.slice(0, before + 1), [
            'stat /a/b', 'stat /a', 'stat ', 'mkdir /a', 'fsyncDir ', 'mkdir /a/b', 'fsyncDir /a', 'mkdir /a/b/LOCK',
            `open ${claim}`,
        ], ops.join(', '));
        assert.ok(ops.includes(`unlink ${claim}`), `the claim was not removed through fs: ${ops.join(', ')}`);
    } finally {
        rmSync(root, { recursive: true, force: true });
    }
});
