// Goal: a node whose SQLite worker fails after the start stays well-behaved. (1) The worker dies
// while the node serves: onFailure is called exactly once, the node stops serving (a write is
// refused), close() is memoised and idempotent and leaves nothing behind, and the directory
// starts again. (2) The worker is stuck (blocked in a system call it cannot leave) while the
// node closes: close() still resolves, bounded by the Fsm's close deadline; once the worker can
// go on, its thread ends and nothing is left. (A worker that dies during the start: in
// start-failure.test.ts.)
// Method: real one-voter nodes through createNode() on 127.0.0.1, in temporary directories.
// (1) The test hook `testing.fsmCrashPoint: 'checkpoint-after'` makes the worker exit (code
// 70) at its first checkpoint, which the Fsm's periodic durable-index sync runs once a write
// left WAL frames: no checkpoint can happen before the test's first write. (2) The file of
// database 'stuck' is a FIFO with no writer: the worker's open(2) of it sleeps in the kernel
// (wchan wait_for_partner, read from /proc) until the test opens the FIFO for writing, after
// close() resolved; `testing.fsmCloseDeadlineMs: 100` bounds each of Fsm.close()'s waits.
// Leftovers (fds under the data directory, the address, threads, active resources, unhandled
// rejections) are measured as in start-failure.test.ts (test/node/leftovers.ts). No sleeps:
// conditions are polled with deadlines.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createAdminClient } from '../../src/client/index.js';
import { databaseFileName } from '../../src/fsm/layout.js';
import { createNode } from '../../src/index.js';
import { Deferred } from '../../src/lib/deferred.js';
import { TqliteError } from '../../src/lib/errors.js';
import { freeLoopbackPort } from '../../src/lib/net.js';
import { B, Req, Res } from '../server/helpers/fixture.js';
import { decodeFailure, RawClient } from '../server/helpers/raw-client.js';
import { fdsUnder, Leftovers, threadsWaitingIn, until, wchanReadable, writeAndRead } from './leftovers.js';

const TICK_MS = 20;

let root = '';
let leftovers: Leftovers | undefined;

async function freshAddress(): Promise<string> {
    return `127.0.0.1:${await freeLoopbackPort()}`;
}

async function assertNothingLeft(what: string, dataDir: string, address: string): Promise<void> {
    assert.ok(leftovers !== undefined);
    await leftovers.assertNothingLeft(what, dataDir, address);
}

/** A node on `dataDir` (without test hooks) takes a write and reads the table back. */
async function startAndWrite(dataDir: string, address: string, value: number): Promise<number[]> {
    const node = await createNode({ address, dataDir, tickMs: TICK_MS });
    try {
        return await writeAndRead(address, 'faults', value);
    } finally {
        await node.close();
    }
}

before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tqlite-worker-faults-'));
    leftovers = await Leftovers.baseline();
});

after(() => {
    leftovers?.stop();
    rmSync(root, { recursive: true, force: true });
});

test('the worker dies while the node serves: onFailure once, requests refused, close() leaves nothing', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'dies-serving');
    const failures: unknown[] = [];
    const failed = new Deferred<void>();
    const node = await createNode({
        address, dataDir, tickMs: TICK_MS, testing: { fsmCrashPoint: 'checkpoint-after' },
        onFailure: (error) => {
            failures.push(error);
            failed.tryResolve();
        },
    });
    try {
        const db = await connect({ servers: [address], database: 'faults', timeoutMs: 10_000 });
        try {
            // The first WAL frames: the next periodic sync checkpoints them, and the worker exits.
            // (The write's reply may or may not get out first: either is fine here.)
            await db.exec('CREATE TABLE t (x INTEGER)').catch(() => undefined);
            await failed.promise;
            assert.equal(failures.length, 1);
            const failure = failures[0];
            assert.ok(failure instanceof TqliteError, String(failure));
            assert.equal(failure.code, 'ERR_STORAGE');
            assert.match(failure.message, /exited with code 70/);
        } finally {
            await db.close();
        }
        // The gateway answers "not leader" (a stopping node's answer): the client retries until
        // its timeout, here 1 s.
        await assert.rejects(async () => {
            const late = await connect({ servers: [address], database: 'faults', timeoutMs: 1_000 });
            try {
                await late.exec('INSERT INTO t VALUES (1)');
            } finally {
                await late.close();
            }
        }, { code: 'ERR_TIMEOUT' }, 'a failed node still served a write');
    } finally {
        const closing = node.close();
        assert.equal(node.close(), closing, 'close() is memoised');
        await closing;
        await node.close();
    }
    assert.equal(failures.length, 1, 'onFailure called more than once');
    await assertNothingLeft('the failed node closed', dataDir, address);
    // Recovery after a worker that died just after its checkpoint: the node starts and serves.
    const values = await startAndWrite(dataDir, address, 2);
    assert.ok(values.includes(2), `row 2 not read back: ${values.join(' ')}`);
    await assertNothingLeft('the restarted node closed', dataDir, address);
});

test('a client\'s bad database name is refused with SQLITE_CANTOPEN; the node goes on serving', async () => {
    // An empty name reached the SQLite worker, whose assertion fail-stopped the node: one OPEN
    // from any client stopped the leader.
    const address = await freshAddress();
    const dataDir = join(root, 'bad-name');
    const failures: unknown[] = [];
    const node = await createNode({ address, dataDir, tickMs: TICK_MS, onFailure: (e) => failures.push(e) });
    try {
        await until(() => node.status().role === 'leader', 'leader', 10_000);
        for (const name of ['', 'x'.repeat(300), '\u00e9'.repeat(50)]) {
            const client = await RawClient.open(address);
            try {
                await client.request(Req.client, B.u64(0));
                const reply = await client.request(Req.open, B.open(name));
                assert.equal(reply.type, Res.failure, `OPEN of a ${name.length}-character name`);
                assert.equal(decodeFailure(reply).code, 14n, decodeFailure(reply).text);
                assert.match(decodeFailure(reply).text, /^cannot open database: the database name /);
            } finally {
                client.close();
            }
        }
        assert.deepEqual(failures, []);
        const values = await writeAndRead(address, 'x'.repeat(200), 7);
        assert.deepEqual(values, [7], 'a long but valid name');
    } finally {
        await node.close();
    }
});

test('a leader whose worker dies stops taking part in raft: the others elect a leader at once', {
    timeout: 60_000,
}, async () => {
    // With an embedder that does not close a failed node at once (onFailure only records), the
    // failed leader used to keep heartbeating: the followers never timed out and the cluster kept a
    // leader that refused every request, and the failed node still named itself leader.
    const addresses = [await freshAddress(), await freshAddress(), await freshAddress()];
    const nodes: Awaited<ReturnType<typeof createNode>>[] = [];
    let failed = false;
    try {
        for (let i = 0; i < 3; i++) {
            nodes.push(await createNode({
                address: addresses[i] as string, dataDir: join(root, `halt-n${i}`), tickMs: TICK_MS,
                join: i === 0 ? [] : [addresses[0] as string],
                ...(i === 0 ? { testing: { fsmCrashPoint: 'checkpoint-after' as const }, onFailure: () => {
                    failed = true;
                } } : {}),
            }));
        }
        const [first, second, third] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
        await until(() => first.status().role === 'leader'
            && first.status().configuration.servers.filter((m) => m.role === 'voter').length === 3,
        'three voters, node 0 leading', 20_000);
        // The first WAL frames on the leader: its next periodic sync checkpoints, and its worker exits.
        const db = await connect({ servers: [addresses[0] as string], database: 'halt', timeoutMs: 10_000 });
        try {
            await db.exec('CREATE TABLE t (x INTEGER)').catch(() => undefined);
        } finally {
            await db.close();
        }
        await until(() => failed, 'node 0 failed', 20_000);
        await until(() => second.status().role === 'leader' || third.status().role === 'leader',
            'a new leader among the others', 10_000);
        // Asked alone, the failed node names no leader or the new one, never itself.
        const askFailed = createAdminClient({ servers: [addresses[0] as string], timeoutMs: 2_000 });
        try {
            const named = await askFailed.leader().catch(() => undefined);
            assert.notEqual(named?.address, addresses[0], 'the failed node names itself leader');
        } finally {
            await askFailed.close();
        }
        const writer = await connect({ servers: addresses, database: 'halt', timeoutMs: 10_000 });
        try {
            await writer.exec('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
            await writer.exec('INSERT INTO t VALUES (1)');
        } finally {
            await writer.close();
        }
    } finally {
        await Promise.all(nodes.map((n) => n.close()));
    }
});

test('a worker stuck while the node closes: close() resolves within its deadline; the thread ends later', {
    timeout: 15_000, // close() must not wait for the worker (the default deadline alone would be 4 × 5 s)
    skip: wchanReadable() ? false : '/proc/self/task/*/wchan is hidden here: cannot see that the worker is stuck',
}, async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'stuck-closing');
    const node = await createNode({ address, dataDir, tickMs: TICK_MS, testing: { fsmCloseDeadlineMs: 100 } });
    // The generation directory of a fresh node is db/gen-0.
    const fifo = join(dataDir, 'db', 'gen-0', databaseFileName('stuck'));
    execFileSync('mkfifo', [fifo]);
    let released = false;
    const release = (): void => {
        if (released) return;
        released = true;
        closeSync(openSync(fifo, 'w')); // the blocked reader's open returns; so does this one
    };
    try {
        assert.equal(threadsWaitingIn('wait_for_partner'), 0);
        // The gateway's OPEN of 'stuck' makes the worker open the FIFO: it blocks there.
        const stuck = connect({ servers: [address], database: 'stuck', timeoutMs: 60_000 })
            .then((db) => db.exec('SELECT 1').finally(() => db.close()));
        stuck.catch(() => undefined);
        await until(() => threadsWaitingIn('wait_for_partner') === 1, 'the worker to block on the FIFO');
        const closing = node.close();
        assert.equal(node.close(), closing, 'close() is memoised');
        await closing;
        assert.equal(threadsWaitingIn('wait_for_partner'), 1, 'the worker was not stuck while the node closed');
        release();
        await assert.rejects(stuck);
    } finally {
        release();
        await node.close();
    }
    // The released thread ends on its own time ("later"), closing its descriptors as it goes:
    // wait for that before checking that nothing is left (the check does not wait for files).
    await until(() => fdsUnder(dataDir).length === 0, 'the released worker to close its files');
    rmSync(fifo);
    await assertNothingLeft('the node closed while its worker was stuck', dataDir, address);
});
