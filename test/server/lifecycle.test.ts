// Goal: the gateway's resource rules (STYLE.md §7.5): a bounded number of connections,
// backpressure on slow readers (the backend is not asked for more rows while the client does
// not read), a handshake deadline, a deadline for a request left half-sent, idempotent Server.close() that closes the listener and every
// session (and its SQL session) once the request in flight is answered, and nothing running
// after close.
// Method: real sockets on 127.0.0.1 against the better-sqlite3 test backend; waiting is done by
// polling a condition on setImmediate with an iteration bound, never by sleeping; the handshake
// deadline uses a ManualClock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { ConfigError } from '../../src/lib/errors.js';
import type { SqlSession } from '../../src/server/backend.js';
import { Server, parseAddress } from '../../src/server/server.js';
import { RawClient, decodeFailure, frame } from './helpers/raw-client.js';
import { B, Req, Res, openClient, startFixture } from './helpers/fixture.js';
import { readRows } from './helpers/rows.js';

async function until(condition: () => boolean, what: string, spins = 200_000): Promise<void> {
    for (let i = 0; !condition(); i++) {
        if (i >= spins) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
    }
}

test('addresses: host:port, [v6]:port, @abstract; bad ones are ConfigErrors', () => {
    assert.deepEqual(parseAddress('127.0.0.1:9001'), { host: '127.0.0.1', port: 9001 });
    assert.deepEqual(parseAddress('[::1]:9001'), { host: '::1', port: 9001 });
    assert.deepEqual(parseAddress('@tqlite'), { path: '\0tqlite' });
    for (const bad of ['nocolon', ':9001', 'h:99999', 'h:x', '@']) {
        assert.throws(() => parseAddress(bad), ConfigError, bad);
    }
});

test('connections beyond connectionsMax are closed; the others keep working', async () => {
    const fx = await startFixture({ connectionsMax: 2 });
    try {
        const a = await RawClient.open(fx.server.address);
        const b = await RawClient.open(fx.server.address);
        await until(() => fx.server.connectionCount === 2, 'two sessions');
        const c = await RawClient.open(fx.server.address);
        await c.closed();
        assert.equal(fx.server.refusedConnections, 1);
        assert.equal((await a.request(Req.leader, B.u64(0))).type, Res.server);
        assert.equal((await b.request(Req.leader, B.u64(0))).type, Res.server);
        a.close();
        await until(() => fx.server.connectionCount === 1, 'a torn down');
        const d = await RawClient.open(fx.server.address);
        assert.equal((await d.request(Req.leader, B.u64(0))).type, Res.server);
        b.close();
        d.close();
    } finally {
        await fx.close();
    }
});

test('a slow reader stops the query: no more batches are pulled until it reads', async () => {
    const fx = await startFixture();
    try {
        const client = await openClient(fx, 'slow');
        // 20,000 rows of 1 KiB: about 20 MiB, far more than the socket buffers hold.
        const sql = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) '
            + 'SELECT x, zeroblob(1000) FROM c';
        client.socket.pause();
        client.write(frame(Req.querySql, B.sql(sql)));
        await until(() => fx.server.connectionsAwaitingDrain === 1, 'the gateway to wait for drain');
        const pulled = fx.backend.batchesPulled;
        // Give the event loop many turns: nothing may be pulled while the client does not read.
        for (let i = 0; i < 1000; i++) await new Promise((resolve) => setImmediate(resolve));
        assert.equal(fx.backend.batchesPulled, pulled);
        assert.ok(pulled * 100 < 15_000, `pulled ${pulled} batches of 100 rows while blocked`);
        client.socket.resume();
        const result = await readRows(client, await client.read());
        assert.equal(result.rows.length, 20_000);
        client.close();
    } finally {
        await fx.close();
    }
});

test('a client that stops reading is disconnected after writeStallTimeoutMs', async () => {
    const clock = new ManualClock();
    const fx = await startFixture({ clock, limits: { writeStallTimeoutMs: 30_000 } });
    try {
        const client = await openClient(fx, 'stall');
        const witness = await openClient(fx, 'stall');
        client.socket.pause();
        client.write(frame(Req.querySql, B.sql('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c '
            + 'WHERE x < 20000) SELECT x, zeroblob(1000) FROM c')));
        await until(() => fx.server.connectionsAwaitingDrain === 1, 'the gateway to wait for drain');
        clock.advance(29_999);
        assert.equal(fx.server.connectionCount, 2);
        clock.advance(1);
        await until(() => fx.server.connectionCount === 1, 'the stalled connection to go');
        assert.equal(fx.backend.sessions.size, 1, 'its SQL session was closed');
        const rows = await readRows(witness, await witness.request(Req.querySql, B.sql('SELECT 1')));
        assert.deepEqual(rows.rows, [[1n]]);
        client.close();
        witness.close();
    } finally {
        await fx.close();
    }
});

test('a client that stops in the middle of a request is disconnected after readStallTimeoutMs; progress restarts it',
    async () => {
        const clock = new ManualClock();
        const fx = await startFixture({ clock, limits: { readStallTimeoutMs: 60_000 } });
        try {
            const client = await openClient(fx, 'stall');
            const witness = await openClient(fx, 'stall');
            // A header announcing 8 words of body (64 bytes), then 1 byte of it, then later another.
            const pending = clock.pendingCount;
            client.write(Buffer.from([8, 0, 0, 0, Req.execSql, 0, 0, 0, 0]));
            await until(() => clock.pendingCount === pending + 1, 'the read-stall deadline');
            clock.advance(40_000);
            client.write(Buffer.from([0]));
            await until(() => clock.pendingCount === pending + 1 && clock.now() === 40_000, 'a restarted deadline');
            clock.advance(59_999);
            assert.equal(fx.server.connectionCount, 2, 'closed before its deadline (the second byte restarts it)');
            clock.advance(1);
            await until(() => fx.server.connectionCount === 1, 'the stalled connection to go');
            const rows = await readRows(witness, await witness.request(Req.querySql, B.sql('SELECT 1')));
            assert.deepEqual(rows.rows, [[1n]]);
            assert.equal(clock.pendingCount, pending, 'no deadline is left for a whole request');
            client.close();
            witness.close();
        } finally {
            await fx.close();
        }
    });

test('a connection that never sends its version is closed at the handshake deadline', async () => {
    const clock = new ManualClock();
    const fx = await startFixture({ clock, limits: { handshakeTimeoutMs: 5000 } });
    try {
        const client = await RawClient.open(fx.server.address, null);
        client.write(Buffer.from([1, 0, 0]));
        await until(() => fx.server.connectionCount === 1 && clock.pendingCount === 1, 'the session');
        clock.advance(4999);
        assert.equal(client.isClosed, false);
        clock.advance(1);
        await client.closed();
    } finally {
        await fx.close();
    }
});

test('close() is idempotent, closes the listener and every session, and waits for them', async () => {
    const fx = await startFixture();
    const idle = await RawClient.open(fx.server.address);
    const withDb = await openClient(fx, 'closing');
    await withDb.request(Req.execSql, B.sql('CREATE TABLE big (x); INSERT INTO big WITH RECURSIVE c(x) AS '
        + '(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT x FROM c'));
    await withDb.request(Req.execSql, B.sql('BEGIN'));
    const streaming = await openClient(fx, 'closing');
    streaming.socket.pause();
    streaming.write(frame(Req.querySql, B.sql('SELECT x FROM big')));
    assert.equal(fx.backend.sessions.size, 2);
    const first = fx.server.close();
    const second = fx.server.close();
    assert.equal(first, second);
    await first;
    assert.equal(fx.server.connectionCount, 0);
    assert.equal(fx.backend.sessions.size, 0, 'every SQL session closed');
    await idle.closed();
    await withDb.closed();
    streaming.socket.resume();
    await streaming.closed();
    await assert.rejects(RawClient.open(fx.server.address));
    await fx.close();
});

test('a backend whose SQL session never closes delays Server.close() only until sqlCloseTimeoutMs', async () => {
    const clock = new ManualClock();
    const fx = await startFixture({ clock, limits: { sqlCloseTimeoutMs: 2000 } });
    const open = fx.backend.open.bind(fx.backend);
    const stuck: SqlSession[] = [];
    fx.backend.open = async (name: string): Promise<SqlSession> => {
        const session = await open(name);
        stuck.push(session);
        return { ...bindAll(session), close: () => new Promise<void>(() => undefined) };
    };
    await openClient(fx, 'stuck');
    let closed = false;
    const closing = fx.server.close().then(() => (closed = true));
    // Two timers: the drain bound of the idle connection (it ends at once, but the server's
    // bound is armed anyway) and the deadline of the stuck SQL session's close.
    await until(() => clock.pendingCount === 2, 'the close deadline');
    assert.equal(closed, false);
    clock.advance(2000);
    await closing;
    for (const session of stuck) await session.close();
    await fx.close();
});

test('close() lets the request in flight finish; a queued one is answered "not leader" without running', async () => {
    const fx = await startFixture();
    const open = fx.backend.open.bind(fx.backend);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
        release = resolve;
    });
    let waiting = false;
    fx.backend.open = async (name: string): Promise<SqlSession> => {
        const session = await open(name);
        // The first EXEC_SQL waits for the gate: a write in flight (e.g. waiting for raft).
        let first = true;
        return {
            ...bindAll(session),
            execSql: async (sql, params) => {
                if (first) {
                    first = false;
                    waiting = true;
                    await gate;
                }
                return session.execSql(sql, params);
            },
        };
    };
    const client = await openClient(fx, 'drain');
    client.write(frame(Req.execSql, B.sql('CREATE TABLE t (x)')));
    client.write(frame(Req.execSql, B.sql('INSERT INTO t VALUES (1)'))); // queued behind it
    await until(() => waiting, 'the first request to be in flight');
    const closing = fx.server.close();
    await new Promise((resolve) => setImmediate(resolve)); // close() has begun: the gateway is draining
    release();
    const answer = await client.read();
    assert.equal(answer.type, Res.result, 'the request in flight got its answer');
    const queued = await client.read();
    assert.equal(queued.type, Res.failure);
    assert.equal(decodeFailure(queued).code, 10250n, 'not leader: the client may retry it elsewhere');
    await client.closed();
    await closing;
    assert.equal(fx.backend.sessions.size, 0);
    // The queued INSERT never ran: reopen the database directly and look.
    const check = await fx.backend.open('drain');
    const rows = await check.querySql('SELECT count(*) AS n FROM t', []);
    const first = await rows.batches.next();
    await rows.batches.return();
    assert.deepEqual(first.value, [[0n]]);
    await check.close();
    await fx.close();
});

function bindAll(session: SqlSession): SqlSession {
    return {
        prepare: session.prepare.bind(session),
        exec: session.exec.bind(session),
        query: session.query.bind(session),
        finalize: session.finalize.bind(session),
        execSql: session.execSql.bind(session),
        querySql: session.querySql.bind(session),
        interrupt: session.interrupt.bind(session),
        close: session.close.bind(session),
    };
}

test('start() twice is a programmer error; close() before start() is fine', async () => {
    const fx = await startFixture();
    await assert.rejects(async () => fx.server.start());
    await fx.close();
    const { SqliteBackend } = await import('./helpers/sqlite-backend.js');
    const never = new Server({ backend: new SqliteBackend({ dir: '/nonexistent', id: 1n, address: '' }),
        address: '127.0.0.1:0' });
    await never.close();
    await never.close();
});
