// Goal: one node per data directory. A second node on a directory that a running node holds is
// refused with a StorageError before it touches anything (in the same process and from another
// process), the first keeps working, and a LOCK left by a process that is gone (kill -9) does
// not stop the next start. Method: createNode() on temporary directories; the other process is
// a child that holds a LOCK naming itself (`sleep`), then one that has exited.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/client/index.js';
import { createNode } from '../../src/index.js';
import { processStartTime as startTimeOf } from '../../src/node/dir-lock.js';
import { freeLoopbackPort } from '../../src/lib/net.js';

const TICK_MS = 20;

async function address(): Promise<string> {
    return `127.0.0.1:${await freeLoopbackPort()}`;
}

async function writeAndRead(nodeAddress: string, value: number): Promise<number[]> {
    const db = await connect({ servers: [nodeAddress], database: 'lock', timeoutMs: 10_000 });
    try {
        await db.exec('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
        await db.exec('INSERT INTO t VALUES (?)', [value]);
        return (await db.query('SELECT x FROM t ORDER BY x').all()).map((r) => Number(r.x));
    } finally {
        await db.close();
    }
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
            assert.deepEqual(await writeAndRead(first.address, 1), [1]);
        } finally {
            await first.close();
        }
        assert.equal(existsSync(join(dataDir, 'LOCK')), false, 'close() leaves no LOCK');
        // The same address: the cluster configuration in the directory names it.
        const again = await createNode({ address: firstAddress, dataDir, tickMs: TICK_MS });
        try {
            assert.deepEqual(await writeAndRead(again.address, 2), [1, 2]);
        } finally {
            await again.close();
        }
    } finally {
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a LOCK held by a live process refuses the start; once that process is gone it is taken over', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
        const pid = holder.pid as number;
        writeFileSync(join(dataDir, 'LOCK'), `${pid} ${startTimeOf(pid)}\n`);
        await assert.rejects(createNode({ address: await address(), dataDir, tickMs: TICK_MS }),
            { code: 'ERR_STORAGE', message: new RegExp(`in use by process ${pid}`) });
        assert.deepEqual(readFileSync(join(dataDir, 'LOCK'), 'utf8'), `${pid} ${startTimeOf(pid)}\n`,
            'a refused start leaves the holder\'s LOCK alone');
        const exited = new Promise((resolve) => holder.once('exit', resolve));
        holder.kill('SIGKILL');
        await exited;
        // Same PID and start time in the file, but the process is gone: stale.
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS });
        try {
            assert.deepEqual(await writeAndRead(node.address, 3), [3]);
            assert.match(readFileSync(join(dataDir, 'LOCK'), 'utf8'), new RegExp(`^${process.pid} `));
        } finally {
            await node.close();
        }
    } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a LOCK naming a live PID with another start time (a reused PID) is stale', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tqlite-lock-'));
    try {
        writeFileSync(join(dataDir, 'LOCK'), `${process.ppid} 1\n`);
        const node = await createNode({ address: await address(), dataDir, tickMs: TICK_MS });
        await node.close();
    } finally {
        rmSync(dataDir, { recursive: true, force: true });
    }
});
