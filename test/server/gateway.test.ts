// Goal: every request type of the dqlite protocol (0–19) gets the response wire-protocol.md
// describes, with the FAILURE codes of §7 and none of the dqlite bugs of §12, and one
// connection's state (database, statement ids, interrupts) behaves as dqlite's does.
// Method: a real Server on 127.0.0.1:0 with the better-sqlite3 test backend; a byte-level client
// sends requests built by hand and reads whole messages; ROWS are decoded with src/wire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ByteReader } from '../../src/lib/bytes.js';
import { IndeterminateError } from '../../src/lib/errors.js';
import { RawClient, decodeFailure, frame, LEGACY_VERSION } from './helpers/raw-client.js';
import type { Message } from './helpers/raw-client.js';
import { B, NODE_ID, P, Req, Res, openClient, startFixture } from './helpers/fixture.js';
import type { Fixture } from './helpers/fixture.js';
import { readRows, rowsMessage } from './helpers/rows.js';

let fx: Fixture;

before(async () => {
    fx = await startFixture();
});

after(async () => {
    await fx.close();
});

function assertFailure(message: Message, code: number, text?: string | RegExp): void {
    assert.equal(message.type, Res.failure, `expected FAILURE ${code}, got type ${message.type}`);
    const failure = decodeFailure(message);
    assert.equal(failure.code, BigInt(code), failure.text);
    if (typeof text === 'string') assert.equal(failure.text, text);
    else if (text !== undefined) assert.match(failure.text, text);
}

function u64s(message: Message): bigint[] {
    const r = new ByteReader(message.body);
    const out: bigint[] = [];
    while (r.remaining >= 8) out.push(r.u64());
    return out;
}

function stmtOf(message: Message): { db: number; id: number; params: bigint; offset?: bigint } {
    assert.equal(message.type, Res.stmt, `expected STMT, got ${message.type}`);
    const r = new ByteReader(message.body);
    const db = r.u32();
    const id = r.u32();
    const params = r.u64();
    return r.remaining >= 8 ? { db, id, params, offset: r.u64() } : { db, id, params };
}

test('LEADER answers this voter leader; non-voters answer no leader', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        const reply = await client.request(Req.leader, B.u64(0));
        assert.equal(reply.type, Res.server);
        const r = new ByteReader(reply.body);
        assert.equal(r.u64(), NODE_ID);
        assert.equal(r.text(), fx.server.address);
        fx.backend.servers = [{ ...fx.backend.servers[0]!, role: 'standby' }];
        const empty = await client.request(Req.leader, B.u64(0));
        assert.deepEqual([...empty.body], new Array(16).fill(0));
    } finally {
        fx.backend.setAddress(fx.server.address);
        fx.backend.servers = [{ id: NODE_ID, address: fx.server.address, role: 'voter' }];
        client.close();
    }
});

test('a legacy-version connection gets the legacy SERVER form', async () => {
    const client = await RawClient.open(fx.server.address, LEGACY_VERSION);
    try {
        const reply = await client.request(Req.leader, B.u64(0));
        assert.equal(reply.type, Res.server);
        assert.equal(new ByteReader(reply.body).text(), fx.server.address);
        assert.equal(reply.body.length, Math.ceil((fx.server.address.length + 1) / 8) * 8);
    } finally {
        client.close();
    }
});

test('a wrong version closes the connection without a reply', async () => {
    const client = await RawClient.open(fx.server.address, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]));
    await client.closed();
});

test('CLIENT → WELCOME 15000; OPEN → DB 0; a second OPEN → FAILURE 5', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        const welcome = await client.request(Req.client, B.u64(0));
        assert.equal(welcome.type, Res.welcome);
        assert.deepEqual(u64s(welcome), [15000n]);
        const db = await client.request(Req.open, B.open('open-test'));
        assert.equal(db.type, Res.db);
        assert.deepEqual(u64s(db), [0n]);
        assertFailure(await client.request(Req.open, B.open('other')), 5,
            'a database for this connection is already open');
    } finally {
        client.close();
    }
});

test('SQL requests without an open database → FAILURE 12; wrong db id → FAILURE 12', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        assertFailure(await client.request(Req.prepare, B.prepare('SELECT 1')), 12, 'no database opened');
        assertFailure(await client.request(Req.execSql, B.sql('SELECT 1')), 12, 'no database opened');
        assertFailure(await client.request(Req.exec, B.stmt(0)), 12, 'no database opened');
        await client.request(Req.open, B.open('test'));
        const wrongDb = Buffer.from(B.sql('SELECT 1'));
        wrongDb.writeUInt32LE(1, 0);
        assertFailure(await client.request(Req.querySql, wrongDb), 12, 'no database opened');
        // INTERRUPT ignores its db id.
        assert.equal((await client.request(Req.interrupt, B.u64(7))).type, Res.empty);
    } finally {
        client.close();
    }
});

test('statement ids take the lowest free slot; a finalised id → FAILURE 12, not a crash', async () => {
    const client = await openClient(fx);
    try {
        const ids: number[] = [];
        for (let i = 0; i < 3; i++) ids.push(stmtOf(await client.request(Req.prepare, B.prepare(`SELECT ${i}`))).id);
        assert.deepEqual(ids, [0, 1, 2]);
        assert.equal((await client.request(Req.finalize, B.stmt(0))).type, Res.empty);
        assertFailure(await client.request(Req.finalize, B.stmt(0)), 12, 'no statement with the given id');
        assertFailure(await client.request(Req.exec, B.stmt(0)), 12, 'no statement with the given id');
        assertFailure(await client.request(Req.query, B.stmt(0)), 12, 'no statement with the given id');
        assert.equal(stmtOf(await client.request(Req.prepare, B.prepare('SELECT ?, ?'))).id, 0);
        const rows = await readRows(client, await client.request(Req.query, B.stmt(0, [P.int(5n), P.text('x')])));
        assert.deepEqual(rows.rows, [[5n, 'x']]);
    } finally {
        client.close();
    }
});

test('PREPARE: tails, empty SQL, syntax errors, schema 1 offsets', async () => {
    const client = await openClient(fx);
    try {
        assertFailure(await client.request(Req.prepare, B.prepare('SELECT 1; SELECT 2')), 1, 'nonempty statement tail');
        const commentTail = stmtOf(await client.request(Req.prepare, B.prepare('SELECT ?; /* c */ ;')));
        assert.equal(commentTail.params, 1n);
        assert.equal(commentTail.offset, undefined);
        assertFailure(await client.request(Req.prepare, B.prepare('  -- nothing\n')), 0, 'empty statement');
        assertFailure(await client.request(Req.prepare, B.prepare('SELEC 1')), 1, /syntax error/);
        const sql = 'SELECT 1; SELECT 2';
        const reply = await client.request(Req.prepare, B.prepare(sql), 1);
        assert.equal(reply.schema, 1);
        assert.equal(stmtOf(reply).offset, 9n);
    } finally {
        client.close();
    }
});

test('EXEC/EXEC_SQL results, parameters of every type, several statements in one EXEC_SQL', async () => {
    const client = await openClient(fx, 'exec-test');
    try {
        const created = await client.request(Req.execSql, B.sql(
            'CREATE TABLE v (i INTEGER, f REAL, s TEXT, b BLOB, n, d DATETIME, bo BOOLEAN); '
            + 'INSERT INTO v (i) VALUES (?); INSERT INTO v (i) VALUES (?)', [P.int(1n), P.int(2n), P.int(99n)]));
        assert.equal(created.type, Res.result);
        assert.deepEqual(u64s(created), [2n, 1n]);
        const stmt = stmtOf(await client.request(Req.prepare, B.prepare('INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?)')));
        assert.equal(stmt.params, 7n);
        const result = await client.request(Req.exec, B.stmt(stmt.id, [P.int(-5n), P.float(1.5), P.text('héllo'),
            P.blob(Buffer.from([1, 2, 3])), P.null(), P.iso('2024-01-02 03:04:05+00:00'), P.bool(true)]));
        assert.deepEqual(u64s(result), [3n, 1n]);
        const rows = await readRows(client, await client.request(Req.querySql, B.sql('SELECT * FROM v WHERE i = -5')));
        assert.deepEqual(rows.columns, ['i', 'f', 's', 'b', 'n', 'd', 'bo']);
        assert.deepEqual(rows.types, [[1, 2, 3, 4, 5, 10, 11]]);
        assert.deepEqual(rows.rows[0]?.slice(0, 3), [-5n, 1.5, 'héllo']);
        // COMMIT repeats the connection's values, as dqlite does.
        await client.request(Req.execSql, B.sql('BEGIN'));
        assert.deepEqual(u64s(await client.request(Req.execSql, B.sql('COMMIT'))), [3n, 1n]);
        // A UNIXTIME parameter cannot be bound.
        assertFailure(await client.request(Req.exec, B.stmt(stmt.id, [P.unix(1n)])), 1, 'bind parameters');
        // More parameters than placeholders.
        assertFailure(await client.request(Req.querySql, B.sql('SELECT ?', [P.int(1n), P.int(2n)])), 25);
        // A statement that yields rows cannot go through EXEC.
        assertFailure(await client.request(Req.execSql, B.sql('SELECT 1')), 1, /rows yielded/);
        assertFailure(await client.request(Req.execSql, B.sql('INSERT INTO nowhere VALUES (1)')), 1, /no such table/);
        // A negative rowid travels as its two's complement.
        const negative = await client.request(Req.execSql, B.sql('INSERT INTO v (rowid, i) VALUES (-7, 0)'));
        assert.deepEqual(u64s(negative), [2n ** 64n - 7n, 1n]);
    } finally {
        client.close();
    }
});

test('QUERY_SQL: tails, empty SQL, writes give zero columns + DONE, schema 1 parameters', async () => {
    const client = await openClient(fx, 'query-test');
    try {
        assertFailure(await client.request(Req.querySql, B.sql('SELECT 1; SELECT 2')), 1, 'nonempty statement tail');
        assertFailure(await client.request(Req.querySql, B.sql(' ; ')), 0, 'empty statement');
        const write = await client.request(Req.querySql, B.sql('CREATE TABLE q (x)'));
        assert.equal(write.type, Res.rows);
        assert.deepEqual([...write.body], [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        const rows = await readRows(client, await client.request(Req.querySql,
            B.sql('SELECT ?, ?', [P.int(42n), P.text('hello')], 1), 1));
        assert.deepEqual(rows.rows, [[42n, 'hello']]);
        assertFailure(await client.request(Req.querySql, B.sql('SELECT 1'), 2), 1, 'unrecognized schema version');
    } finally {
        client.close();
    }
});

test('declared types: DATETIME → UNIXTIME/ISO8601, BOOLEAN → BOOLEAN, mismatches fall back', async () => {
    const client = await openClient(fx, 'types-test');
    try {
        await client.request(Req.execSql, B.sql('CREATE TABLE d (t TIMESTAMP, b BOOLEAN); '
            + "INSERT INTO d VALUES (1700000000, 1), ('2024-01-02', 0), (NULL, NULL), (1.5, 'yes')"));
        const rows = await readRows(client, await client.request(Req.querySql, B.sql('SELECT t, b FROM d')));
        assert.deepEqual(rows.types, [[9, 11], [10, 11], [10, 5], [2, 3]]);
        assert.deepEqual(rows.rows[0], [1700000000n, true]);
        assert.deepEqual(rows.rows[2], ['', null]);
    } finally {
        client.close();
    }
});

test('large results come in ~4 KiB ROWS batches ending PART, the last one DONE', async () => {
    const client = await openClient(fx, 'big-test');
    try {
        await client.request(Req.execSql, B.sql('CREATE TABLE big (x INTEGER); INSERT INTO big '
            + 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) SELECT x FROM c'));
        const first = await client.request(Req.querySql, B.sql('SELECT x FROM big ORDER BY x'));
        const result = await readRows(client, first);
        assert.equal(result.rows.length, 10_000);
        assert.deepEqual(result.rows[9999], [10000n]);
        assert.ok(result.messages > 30, `${result.messages} messages`);
        for (const size of result.sizes.slice(0, -1)) assert.ok(size >= 4096 && size < 4096 + 64, `size ${size}`);
        // The connection is ready for the next request.
        assert.equal((await client.request(Req.interrupt, B.u64(0))).type, Res.empty);
    } finally {
        client.close();
    }
});

test('column names longer than a batch still give rows (no endless empty PART batches)', async () => {
    const client = await openClient(fx, 'wide-test');
    try {
        const names = Array.from({ length: 3 }, (_, i) => `c${i}_${'x'.repeat(3000)}`);
        const sql = `SELECT ${names.map((n, i) => `${i} AS "${n}"`).join(', ')} UNION ALL SELECT 7, 8, 9`;
        const result = await readRows(client, await client.request(Req.querySql, B.sql(sql)));
        assert.deepEqual(result.columns, names);
        assert.deepEqual(result.rows, [[0n, 1n, 2n], [7n, 8n, 9n]]);
        assert.ok(result.messages <= 2, `${result.messages} messages`);
    } finally {
        client.close();
    }
});

test('a failure in the middle of a query is a clean FAILURE after the PART batches', async () => {
    const client = await openClient(fx, 'big-test');
    try {
        const sql = 'SELECT CASE WHEN x = 5000 THEN abs(-9223372036854775808) ELSE x END FROM big';
        let message = await client.request(Req.querySql, B.sql(sql));
        let batches = 0;
        while (message.type === Res.rows) {
            assert.ok(rowsMessage(message).part, 'no DONE before the failure');
            batches++;
            message = await client.read();
        }
        assert.ok(batches > 0);
        assertFailure(message, 1, 'integer overflow');
        assert.equal((await client.request(Req.interrupt, B.u64(0))).type, Res.empty);
    } finally {
        client.close();
    }
});

test('INTERRUPT during a stream ends it with DONE, then EMPTY; the connection stays usable', async () => {
    const client = await openClient(fx, 'big-test');
    try {
        // About 20 MiB: far more than the socket buffers hold, so the server is still streaming.
        const first = await client.request(Req.querySql, B.sql('SELECT x, zeroblob(2000) FROM big'));
        assert.ok(rowsMessage(first).part);
        client.write(Buffer.concat([Buffer.from([1, 0, 0, 0, Req.interrupt, 0, 0, 0]), Buffer.alloc(8)]));
        const seen: number[] = [];
        for (;;) {
            const message = await client.read();
            seen.push(message.type);
            if (message.type === Res.empty) break;
            assert.equal(message.type, Res.rows);
        }
        assert.equal(seen.at(-1), Res.empty);
        // Unstopped, the result takes 3,334 messages (3 rows of 2 KB each).
        console.log(`interrupted after ${seen.length} messages`);
        assert.ok(seen.length < 3000, `the stream stopped early (${seen.length} messages)`);
        const after = await readRows(client, await client.request(Req.querySql, B.sql('SELECT count(*) FROM big')));
        assert.deepEqual(after.rows, [[10000n]]);
    } finally {
        client.close();
    }
});

test('HEARTBEAT and unknown types → FAILURE 1005 and the connection stays usable', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        for (const type of [2, 20, 77, 255]) {
            assertFailure(await client.request(type, B.u64(0)), 1005, 'unrecognized request type');
        }
        assertFailure(await client.request(Req.leader, B.u64(0), 1), 1005, 'unrecognized schema version');
        assert.equal((await client.request(Req.leader, B.u64(0))).type, Res.server);
    } finally {
        client.close();
    }
});

test('CLUSTER, DESCRIBE, WEIGHT, ADD, ASSIGN, REMOVE, TRANSFER, DUMP', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        assertFailure(await client.request(Req.cluster, B.u64(2)), 1005, 'unrecognized cluster format');
        // dqlite sends FAILURE and then METADATA; exactly one reply must come.
        assertFailure(await client.request(Req.describe, B.u64(1)), 15, 'bad format version');
        assert.equal((await client.request(Req.weight, B.u64(9))).type, Res.empty);
        const metadata = await client.request(Req.describe, B.u64(0));
        assert.equal(metadata.type, Res.metadata);
        assert.deepEqual(u64s(metadata), [0n, 9n]);
        assert.equal((await client.request(Req.add, B.idAddress(5n, '127.0.0.1:5'))).type, Res.empty);
        assertFailure(await client.request(Req.add, B.idAddress(5n, '127.0.0.1:6')), 1, 'server ID already in use');
        assert.equal((await client.request(Req.assign, B.u64(5))).type, Res.empty); // PROMOTE form: voter
        assertFailure(await client.request(Req.assign, Buffer.concat([B.u64(5), B.u64(7)])), 1005);
        assert.equal((await client.request(Req.assign, Buffer.concat([B.u64(5), B.u64(1)]))).type, Res.empty);
        const format0 = await client.request(Req.cluster, B.u64(0));
        assert.equal(format0.type, Res.servers);
        const r0 = new ByteReader(format0.body);
        assert.equal(r0.u64(), 2n);
        assert.equal(r0.u64(), NODE_ID);
        assert.equal(r0.text(), fx.server.address);
        assert.equal(r0.u64(), 5n);
        assert.equal(r0.text(), '127.0.0.1:5');
        assert.equal(r0.remaining, 0);
        const format1 = new ByteReader((await client.request(Req.cluster, B.u64(1))).body);
        assert.deepEqual([format1.u64(), format1.u64(), format1.text(), format1.u64()],
            [2n, NODE_ID, fx.server.address, 0n]);
        assert.deepEqual([format1.u64(), format1.text(), format1.u64()], [5n, '127.0.0.1:5', 1n]);
        assertFailure(await client.request(Req.transfer, B.u64(5)), 1, 'leadership transfer failed');
        assert.equal((await client.request(Req.remove, B.u64(5))).type, Res.empty);
        assertFailure(await client.request(Req.dump, B.text('never-created')), 1002);
    } finally {
        client.close();
    }
});

test('DUMP sends the database image and an empty WAL', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        const files = await client.request(Req.dump, B.text('big-test'));
        assert.equal(files.type, Res.files);
        const r = new ByteReader(files.body);
        assert.equal(r.u64(), 2n);
        assert.equal(r.text(), 'big-test');
        const size = r.u64Number();
        assert.equal(r.bytes(16).toString('latin1'), 'SQLite format 3\0');
        r.skip(size - 16);
        assert.equal(r.text(), 'big-test-wal');
        assert.equal(r.u64(), 0n);
    } finally {
        client.close();
    }
});

test('not leader → 10250; leadership lost → 10506; the connection survives both', async () => {
    const client = await openClient(fx, 'leader-test');
    try {
        fx.backend.leaderId = 77n;
        assertFailure(await client.request(Req.execSql, B.sql('CREATE TABLE x (a)')), 10250, 'not leader');
        assertFailure(await client.request(Req.add, B.idAddress(9n, 'a:1')), 10250, 'not leader');
        fx.backend.leaderId = NODE_ID;
        fx.backend.failNext = new IndeterminateError();
        assertFailure(await client.request(Req.execSql, B.sql('CREATE TABLE x (a)')), 10506, 'leadership lost');
        assert.equal((await client.request(Req.execSql, B.sql('CREATE TABLE x (a)'))).type, Res.result);
    } finally {
        fx.backend.leaderId = NODE_ID;
        client.close();
    }
});

test('CONNECT hands the socket and the bytes after it to the peer transport', async () => {
    const client = await RawClient.open(fx.server.address);
    const raft = Buffer.from('raft bytes follow: anything at all, even \xff\xff\xff\xff', 'latin1');
    client.write(Buffer.concat([frame(Req.connect, B.idAddress(3n, '127.0.0.1:3')), raft]));
    for (let i = 0; fx.backend.handoffs.length === 0; i++) {
        assert.ok(i < 10_000, 'no hand-off');
        await new Promise((resolve) => setImmediate(resolve));
    }
    const handoff = fx.backend.handoffs.pop()!;
    assert.equal(handoff.id, 3n);
    assert.equal(handoff.address, '127.0.0.1:3');
    let received = Buffer.from(handoff.head);
    handoff.socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    handoff.socket.resume();
    for (let i = 0; received.length < raft.length; i++) {
        assert.ok(i < 100_000, 'raft bytes missing');
        await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(received, raft);
    handoff.socket.write('pong');
    handoff.socket.destroy();
    client.close();
});

test('CONNECT is refused (closed) when the node takes no peers', async () => {
    fx.backend.acceptPeers = false;
    try {
        const client = await RawClient.open(fx.server.address);
        client.write(Buffer.concat([Buffer.from([3, 0, 0, 0, Req.connect, 0, 0, 0]), B.idAddress(3n, '127.0.0.1:3')]));
        await client.closed();
    } finally {
        fx.backend.acceptPeers = true;
    }
});

test('a client that half-closes still gets its answers', async () => {
    const client = await RawClient.open(fx.server.address);
    client.write(Buffer.concat([Buffer.from([1, 0, 0, 0, Req.leader, 0, 0, 0]), B.u64(0)]));
    client.socket.end();
    const reply = await client.read();
    assert.equal(reply.type, Res.server);
    await client.closed();
});

test('pipelined requests are answered in order, one at a time', async () => {
    const client = await openClient(fx, 'pipe-test');
    try {
        const requests: Buffer[] = [];
        for (let i = 0; i < 40; i++) {
            const b = B.sql(`SELECT ${i}`);
            const header = Buffer.from([b.length / 8, 0, 0, 0, Req.querySql, 0, 0, 0]);
            requests.push(header, b);
        }
        client.write(Buffer.concat(requests));
        for (let i = 0; i < 40; i++) {
            const rows = await readRows(client, await client.read());
            assert.deepEqual(rows.rows, [[BigInt(i)]]);
        }
    } finally {
        client.close();
    }
});
