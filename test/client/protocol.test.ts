// Goal: the client's protocol behaviour that a healthy real cluster never shows: leader
// redirects, "no leader" passes with back-off and a deadline, retry after "not leader" (and only
// then), IndeterminateError after "leadership lost" or a lost connection, no retry inside a
// transaction, INTERRUPT + drain when a query is left early, abort, backpressure, and what the
// parameters look like on the wire.
// Method: scripted dqlite nodes (helpers/scripted-server.ts) built on src/wire answer each
// request as the test says and record what they received. Every wait is on an event (a
// recorded request, a closed socket), never on time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createAdminClient } from '../../src/client/index.js';
import { Connector } from '../../src/client/connector.js';
import type { Clock, Timer } from '../../src/lib/clock.js';
import { TimerSet } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { freePort } from './helpers/demo-cluster.js';
import { ValueType, encodeResponse } from '../../src/wire/index.js';
import type { Request, Response } from '../../src/wire/index.js';
import { OK_RESULT, ScriptedNode, leaderAnswers } from './helpers/scripted-server.js';
import type { Answer } from './helpers/scripted-server.js';

async function nodes(count: number): Promise<ScriptedNode[]> {
    const out: ScriptedNode[] = [];
    for (let i = 0; i < count; i++) {
        const node = new ScriptedNode(() => 'close');
        await node.listen();
        out.push(node);
    }
    return out;
}

function rows(columns: string[], values: number[], done: boolean): Response {
    return {
        kind: 'rows',
        columns,
        rows: values.map((v) => [{ type: ValueType.integer, value: BigInt(v) }]),
        done,
    };
}

test('discovery follows a redirect, skips nodes without a leader, and keeps the leader connection', async () => {
    const [empty, follower, leader] = await nodes(3) as [ScriptedNode, ScriptedNode, ScriptedNode];
    try {
        empty.handler = () => ({ kind: 'server', id: 0n, address: '' });
        follower.handler = () => ({ kind: 'server', id: 3n, address: leader.address });
        leader.handler = (r, _c, n) => leaderAnswers(n, r) ?? OK_RESULT;
        const db = await connect({ servers: [empty.address, follower.address], database: 'x' });
        try {
            assert.equal(db.leaderAddress, leader.address);
            await db.exec('CREATE TABLE t (x)');
            const kinds = leader.connections[0]?.requests.map((r) => r.kind);
            assert.deepEqual(kinds, ['leader', 'client', 'open', 'execSql']);
            const open = leader.requests.find((r) => r.kind === 'open');
            assert.deepEqual(open, { kind: 'open', name: 'x', flags: 0n, vfs: 'volatile' });
            await empty.waitFor(() => empty.connections.every((c) => c.closed));
            await follower.waitFor(() => follower.connections.every((c) => c.closed));
        } finally {
            await db.close();
        }
        await leader.waitFor(() => leader.connections.every((c) => c.closed));
    } finally {
        await Promise.all([empty, follower, leader].map((n) => n.close()));
    }
});

test('with no leader anywhere, discovery retries with back-off until the deadline', async () => {
    const [a, b] = await nodes(2) as [ScriptedNode, ScriptedNode];
    try {
        a.handler = () => ({ kind: 'server', id: 0n, address: '' });
        // b names a leader that does not claim itself.
        b.handler = (r) => (r.kind === 'leader' ? { kind: 'server', id: 9n, address: a.address } : 'close');
        await assert.rejects(connect({ servers: [a.address, b.address], database: 'x', timeoutMs: 1500 }), {
            code: 'ERR_TIMEOUT',
        });
        // The search went round more than once (the back-off itself is checked below).
        assert.ok(a.count('leader') >= 2, `passes: ${a.count('leader')}`);
    } finally {
        await Promise.all([a.close(), b.close()]);
    }
});

test('a node that accepts and never answers costs one probe timeout, then the deadline ends connect()', async () => {
    const [mute] = await nodes(1) as [ScriptedNode];
    try {
        mute.handler = () => 'silence';
        const before = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
        const connecting = connect({ servers: [mute.address], database: 'x', timeoutMs: 300 });
        await assert.rejects(connecting, { code: 'ERR_TIMEOUT' });
        await mute.waitFor(() => mute.connections.every((c) => c.closed));
        const afterCount = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
        assert.ok(afterCount <= before + 1, 'client sockets are closed');
    } finally {
        await mute.close();
    }
});

test('"not leader" on EXEC_SQL is retried on the new leader, exactly once there', async () => {
    const [old, fresh] = await nodes(2) as [ScriptedNode, ScriptedNode];
    try {
        let leaderAddress = old.address;
        old.handler = (r, _c, n) => {
            if (r.kind === 'leader') return { kind: 'server', id: 1n, address: leaderAddress };
            if (r.kind === 'execSql' && r.sql === 'INSERT 1') {
                leaderAddress = fresh.address;
                return { kind: 'failure', code: 10250, message: 'not leader' };
            }
            return leaderAnswers(n, r) ?? OK_RESULT;
        };
        fresh.handler = (r, _c, n) => leaderAnswers(n, r)
            ?? { kind: 'result', lastInsertId: 5n, rowsAffected: 1n };
        const db = await connect({ servers: [old.address, fresh.address], database: 'x' });
        try {
            assert.deepEqual(await db.exec('INSERT 1'), { lastInsertId: 5, rowsAffected: 1 });
            assert.equal(old.count('execSql'), 1);
            assert.equal(fresh.count('execSql'), 1);
            assert.equal(db.leaderAddress, fresh.address);
        } finally {
            await db.close();
        }
    } finally {
        await Promise.all([old.close(), fresh.close()]);
    }
});

for (const [name, answer] of [
    ['"leadership lost" (10506)', { kind: 'failure', code: 10506, message: 'leadership lost' }],
    ['a connection lost after the request was sent', 'close'],
] as [string, Answer][]) {
    test(`${name} is IndeterminateError and is not retried`, async () => {
        const [node] = await nodes(1) as [ScriptedNode];
        try {
            node.handler = (r, _c, n) => leaderAnswers(n, r) ?? (r.kind === 'execSql' ? answer : OK_RESULT);
            const db = await connect({ servers: [node.address], database: 'x' });
            try {
                await assert.rejects(db.exec('INSERT 1'), { code: 'ERR_LEADERSHIP_LOST' });
                assert.equal(node.count('execSql'), 1);
            } finally {
                await db.close();
            }
        } finally {
            await node.close();
        }
    });
}

test('inside a transaction "not leader" is not retried; the transaction is rolled back', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, _c, n) => {
            if (r.kind === 'execSql' && r.sql === 'INSERT 1') {
                return { kind: 'failure', code: 10250, message: 'not leader' };
            }
            return leaderAnswers(n, r) ?? OK_RESULT;
        };
        const db = await connect({ servers: [node.address], database: 'x' });
        try {
            await assert.rejects(db.transaction(async (tx) => {
                await tx.exec('INSERT 1');
            }), { code: 'ERR_NOT_LEADER' });
            assert.equal(node.count('execSql'), 3); // BEGIN, INSERT 1, ROLLBACK
            const sql = node.requests.flatMap((r) => (r.kind === 'execSql' ? [r.sql] : []));
            assert.deepEqual(sql, ['BEGIN', 'INSERT 1', 'ROLLBACK']);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('a query left after a PART batch sends INTERRUPT, drains to EMPTY, and reuses the connection', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, _c, n) => {
            if (r.kind === 'querySql') return [rows(['n'], [1, 2], false), rows(['n'], [3, 4], false)];
            // dqlite finishes the stream before it reads the INTERRUPT (§8.6).
            if (r.kind === 'interrupt') return [rows(['n'], [5], true), { kind: 'empty' }];
            return leaderAnswers(n, r) ?? OK_RESULT;
        };
        const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
        try {
            const seen: unknown[] = [];
            for await (const row of db.query('SELECT n')) {
                seen.push(row);
                if (seen.length === 3) break;
            }
            assert.deepEqual(seen, [{ n: 1 }, { n: 2 }, { n: 3 }]);
            await db.exec('AFTER');
            const kinds = node.requests.map((r) => r.kind);
            assert.deepEqual(kinds, ['leader', 'client', 'open', 'querySql', 'interrupt', 'execSql']);
            assert.equal(node.connections.filter((c) => c.requests.length > 0).length, 1);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('aborting a call in flight closes that connection; the next call uses a new one', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, _c, n) => {
            return leaderAnswers(n, r) ?? (r.kind === 'execSql' && r.sql === 'HANG' ? 'silence' : OK_RESULT);
        };
        const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
        try {
            const controller = new AbortController();
            const call = db.exec('HANG', [], { signal: controller.signal });
            await node.waitFor(() => node.count('execSql') === 1);
            controller.abort(new Error('user gave up'));
            await assert.rejects(call, (error: Error & { code?: string; cause?: Error }) => {
                return error.code === 'ERR_ABORTED' && error.cause?.message === 'user gave up';
            });
            await node.waitFor(() => node.connections[0]?.closed === true);
            await db.exec('NEXT');
            assert.equal(node.connections.length, 2);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('parameters are encoded as go-dqlite does', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, _c, n) => leaderAnswers(n, r) ?? OK_RESULT;
        const db = await connect({ servers: [node.address], database: 'x' });
        try {
            await db.exec('P', [
                1, 1.5, 2n ** 63n - 1n, 'text', Buffer.from([9]), null, undefined, true, false,
                new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 120)),
            ]);
            const exec = node.requests.find((r): r is Extract<Request, { kind: 'execSql' }> => r.kind === 'execSql');
            assert.deepEqual(exec?.params, [
                { type: ValueType.integer, value: 1n },
                { type: ValueType.float, value: 1.5 },
                { type: ValueType.integer, value: 2n ** 63n - 1n },
                { type: ValueType.text, value: 'text' },
                { type: ValueType.blob, value: Buffer.from([9]) },
                { type: ValueType.null, value: null },
                { type: ValueType.null, value: null },
                { type: ValueType.boolean, value: true },
                { type: ValueType.boolean, value: false },
                { type: ValueType.iso8601, value: '2024-01-02 03:04:05+00:00' },
                { type: ValueType.iso8601, value: '2024-01-02 03:04:05.12+00:00' },
            ]);
            await assert.rejects(db.exec('P', [2n ** 63n]), { code: 'ERR_INVALID_ARGUMENT' });
            await assert.rejects(db.exec('P', [new Date(NaN)]), { code: 'ERR_INVALID_ARGUMENT' });
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('rows are read batch by batch: a slow reader makes the server wait', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    // One row of 64 KiB per batch, so that the socket buffers fill after a few batches.
    const blob = Buffer.alloc(64 * 1024, 7);
    const batch: Response = {
        kind: 'rows', columns: ['n'], rows: [[{ type: ValueType.blob, value: blob }]], done: false,
    };
    let blocked = false;
    let written = 0;
    try {
        node.handler = (r, c, n) => {
            if (r.kind !== 'querySql') return leaderAnswers(n, r) ?? OK_RESULT;
            // Write PART batches until the socket pushes back, then DONE once it drains.
            const bytes = encodeResponse(batch);
            while (c.socket.write(bytes)) written++;
            written++;
            blocked = true;
            c.socket.once('drain', () => c.socket.write(encodeResponse(rows(['n'], [-1], true))));
            return 'silence';
        };
        const db = await connect({ servers: [node.address], database: 'x' });
        try {
            const iterator = db.query<{ n: number | Buffer }>('SELECT n');
            assert.deepEqual((await iterator.next()).value, { n: blob });
            // The server stops being able to write while the client holds one row.
            await node.waitFor(() => blocked);
            let count = 1;
            for await (const row of iterator) {
                count++;
                if (row.n === -1) break;
            }
            assert.equal(count, written + 1);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('a message outside any request closes that connection instead of answering the next request', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        let opens = 0;
        node.handler = (r, _c, n) => {
            if (r.kind === 'open' && opens++ === 0) return [{ kind: 'db', id: 0 }, { kind: 'empty' }];
            return leaderAnswers(n, r) ?? { kind: 'result', lastInsertId: 7n, rowsAffected: 1n };
        };
        const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
        try {
            await node.waitFor(() => node.connections[0]?.closed === true);
            assert.deepEqual(await db.exec('INSERT'), { lastInsertId: 7, rowsAffected: 1 });
            assert.equal(node.connections.length, 2);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('the back-off between discovery passes is 100, 200 ms, then 250 ms', async () => {
    // A clock that records every delay and fires the short ones (the back-off) at once; the
    // long ones (dial, probe, call deadlines) never fire. Discovery dials a closed port, so
    // every pass fails at once and the recorded delays are exactly the back-off schedule.
    const delays: number[] = [];
    const controller = new AbortController();
    const clock: Clock = {
        now: () => 0,
        setTimer(delayMs: number, fn: () => void): Timer {
            let cancelled = false;
            if (delayMs <= 1000) {
                delays.push(delayMs);
                if (delays.length === 6) controller.abort(new Error('enough'));
                setImmediate(() => {
                    if (!cancelled) fn();
                });
            }
            return { cancel: () => void (cancelled = true) };
        },
    };
    const timers = new TimerSet(clock);
    const connector = new Connector({
        servers: [`127.0.0.1:${await freePort()}`], timers, logger: silentLogger, bodyBytesMax: 1 << 20,
        dialTimeoutMs: 5_000, probeTimeoutMs: 10_000,
    });
    await assert.rejects(connector.connectLeader(controller.signal), /enough/);
    assert.deepEqual(delays, [100, 200, 250, 250, 250, 250]);
    timers.close();
});

test('close() while a call waits rejects it with ERR_CLOSED and leaves no socket or timer', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    const resources = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    try {
        node.handler = (r, _c, n) => leaderAnswers(n, r) ?? 'silence';
        const sockets = resources('TCPSocketWrap');
        const timers = resources('Timeout');
        const db = await connect({ servers: [node.address], database: 'x' });
        const admin = createAdminClient({ servers: [node.address] });
        const pending = [db.exec('HANG'), db.query('HANG').all(), admin.cluster()].map((call) => {
            return assert.rejects(call, { code: 'ERR_CLOSED' });
        });
        await node.waitFor(() => {
            return node.count('execSql') === 1 && node.count('querySql') === 1 && node.count('cluster') === 1;
        });
        await Promise.all([db.close(), admin.close(), db.close()]);
        await Promise.all(pending);
        await node.waitFor(() => node.connections.every((c) => c.closed));
        assert.equal(resources('TCPSocketWrap'), sockets);
        assert.equal(resources('Timeout'), timers);
    } finally {
        await node.close();
    }
});

test('FAILURE 12 (stale connection) drops the connection and retries on a fresh one', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, c, n) => {
            if (r.kind === 'exec' && c.id === 0) return { kind: 'failure', code: 12, message: 'no such statement' };
            if (r.kind === 'prepare') return { kind: 'stmt', db: 0, id: 3, params: 0 };
            return leaderAnswers(n, r) ?? { kind: 'result', lastInsertId: 1n, rowsAffected: 1n };
        };
        const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
        try {
            const statement = await db.prepare('INSERT');
            assert.deepEqual(await statement.exec(), { lastInsertId: 1, rowsAffected: 1 });
            // The statement was prepared again on the new connection before EXEC.
            const kinds = node.connections[1]?.requests.map((r) => r.kind);
            assert.deepEqual(kinds, ['leader', 'client', 'open', 'prepare', 'exec']);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('"not leader" on OPEN (dqlite ≥ 1.18.2) sends the client looking again', async () => {
    const [old, fresh] = await nodes(2) as [ScriptedNode, ScriptedNode];
    try {
        let leaderAddress = old.address;
        old.handler = (r, _c, n) => {
            if (r.kind === 'leader') return { kind: 'server', id: 1n, address: leaderAddress };
            if (r.kind === 'open') {
                leaderAddress = fresh.address;
                return { kind: 'failure', code: 10250, message: 'not leader' };
            }
            return leaderAnswers(n, r) ?? OK_RESULT;
        };
        fresh.handler = (r, _c, n) => leaderAnswers(n, r) ?? OK_RESULT;
        const db = await connect({ servers: [old.address, fresh.address], database: 'x' });
        try {
            assert.equal(db.leaderAddress, fresh.address);
            assert.equal(fresh.count('open'), 1);
        } finally {
            await db.close();
        }
    } finally {
        await Promise.all([old.close(), fresh.close()]);
    }
});

test('captureCallSites appends the caller\'s stack to errors that come from the socket', async () => {
    const [node] = await nodes(1) as [ScriptedNode];
    try {
        node.handler = (r, _c, n) => leaderAnswers(n, r) ?? { kind: 'failure', code: 1, message: 'no such table: t' };
        const db = await connect({ servers: [node.address], database: 'x', captureCallSites: true });
        try {
            async function insertIntoTheMissingTable(): Promise<unknown> {
                return db.exec('INSERT INTO t VALUES (1)');
            }
            await assert.rejects(insertIntoTheMissingTable(), (error: Error & { code?: string }) => {
                return error.code === 'ERR_SQLITE' && (error.stack ?? '').includes('insertIntoTheMissingTable');
            });
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
});

test('a second answer in the same chunk as the first closes the connection; the next request is not given it',
    async () => {
        const [node] = await nodes(1) as [ScriptedNode];
        try {
            let inserts = 0;
            node.handler = (r, _c, n) => {
                if (r.kind === 'execSql' && inserts++ === 0) {
                    // One write: the answer, then a stray RESULT that the next request would have taken.
                    return Buffer.concat([encodeResponse({ kind: 'result', lastInsertId: 1n, rowsAffected: 1n }),
                        encodeResponse({ kind: 'result', lastInsertId: 99n, rowsAffected: 99n })]);
                }
                return leaderAnswers(n, r) ?? { kind: 'result', lastInsertId: 2n, rowsAffected: 1n };
            };
            const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
            try {
                assert.deepEqual(await db.exec('INSERT 1'), { lastInsertId: 1, rowsAffected: 1 });
                assert.deepEqual(await db.exec('INSERT 2'), { lastInsertId: 2, rowsAffected: 1 });
                assert.equal(node.connections.length, 2, 'the out-of-step connection was replaced');
            } finally {
                await db.close();
            }
        } finally {
            await node.close();
        }
    });

test('ROWS batches without rows that never end (dqlite with long column names) end the query: ERR_PROTOCOL',
    async () => {
        const [node] = await nodes(1) as [ScriptedNode];
        try {
            node.handler = (r, _c, n) => {
                if (r.kind === 'querySql') return [...Array.from({ length: 40 }, () => rows(['n'], [], false))];
                return leaderAnswers(n, r) ?? OK_RESULT;
            };
            const db = await connect({ servers: [node.address], database: 'x', poolSize: 1 });
            try {
                await assert.rejects(db.query('SELECT n').all(), { code: 'ERR_PROTOCOL', message: /without rows/ });
            } finally {
                await db.close();
            }
        } finally {
            await node.close();
        }
    });
