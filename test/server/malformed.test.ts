// Goal: malformed input never crashes the gateway and never affects other connections
// (issue 5): truncated frames, wrong sizes, words = 0, huge declared sizes, unknown types, bad
// schema bytes, invalid UTF-8, too many parameters, unknown value types, garbage.
// Method: one long-lived "witness" connection with an open database checks after every case
// that the server still answers it; each bad input goes through its own connection, which must
// get a FAILURE (and stay usable) or be closed. A seeded garbage loop ends the file; it prints
// its seed, and SEED=n replays it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, decodeFailure, frame } from './helpers/raw-client.js';
import type { Message } from './helpers/raw-client.js';
import { B, Req, Res, openClient, startFixture } from './helpers/fixture.js';
import type { Fixture } from './helpers/fixture.js';
import { readRows } from './helpers/rows.js';

let fx: Fixture;
let witness: RawClient;

before(async () => {
    fx = await startFixture({ limits: { messageBytesMax: 1024 * 1024 } });
    witness = await openClient(fx, 'witness');
    await witness.request(Req.execSql, B.sql('CREATE TABLE w (x); INSERT INTO w VALUES (1)'));
});

after(async () => {
    witness.close();
    await fx.close();
});

async function witnessWorks(): Promise<void> {
    const rows = await readRows(witness, await witness.request(Req.querySql, B.sql('SELECT x FROM w')));
    assert.deepEqual(rows.rows, [[1n]]);
}

/** Sends raw bytes on a fresh connection; returns the first reply, or 'closed'. */
async function answerTo(bytes: Buffer, options: { open?: boolean } = {}): Promise<Message | 'closed'> {
    const client = options.open === true ? await openClient(fx, 'bad') : await RawClient.open(fx.server.address);
    try {
        client.write(bytes);
        return await client.read().catch(() => 'closed' as const);
    } finally {
        client.close();
    }
}

async function expectFailureThenUsable(bytes: Buffer, code: number, open = false): Promise<void> {
    const client = open ? await openClient(fx, 'bad') : await RawClient.open(fx.server.address);
    try {
        client.write(bytes);
        const reply = await client.read();
        assert.equal(reply.type, Res.failure);
        assert.equal(decodeFailure(reply).code, BigInt(code), decodeFailure(reply).text);
        assert.equal((await client.request(Req.leader, B.u64(0))).type, Res.server, 'connection still usable');
    } finally {
        client.close();
    }
    await witnessWorks();
}

test('words = 0 closes the connection or answers FAILURE; others unaffected', async () => {
    const reply = await answerTo(Buffer.from([0, 0, 0, 0, Req.leader, 0, 0, 0]));
    assert.ok(reply === 'closed' || reply.type === Res.failure);
    await witnessWorks();
});

test('a huge declared size closes the connection at once, without allocating', async () => {
    for (const words of [0xffffffff, 0x20000000, 1024 * 1024 / 8 + 1]) {
        const header = Buffer.alloc(8);
        header.writeUInt32LE(words, 0);
        header.writeUInt8(Req.querySql, 4);
        assert.equal(await answerTo(header), 'closed');
    }
    await witnessWorks();
});

test('a truncated frame followed by a close or by silence harms nobody', async () => {
    const full = frame(Req.querySql, B.sql('SELECT 1'));
    for (const cut of [1, 4, 7, 8, 9, full.length - 1]) {
        const client = await RawClient.open(fx.server.address);
        client.write(full.subarray(0, cut));
        await witnessWorks();
        client.close();
    }
    await witnessWorks();
});

test('a frame split into 1-byte writes is still one request', async () => {
    const client = await RawClient.open(fx.server.address);
    try {
        for (const byte of frame(Req.leader, B.u64(0))) client.write(Buffer.from([byte]));
        assert.equal((await client.read()).type, Res.server);
    } finally {
        client.close();
    }
});

test('fields that overrun the body, text without NUL, invalid UTF-8 → FAILURE 1005', async () => {
    // OPEN whose text has no NUL inside the body.
    await expectFailureThenUsable(frame(Req.open, Buffer.from('abcdefgh')), 1005);
    // EXEC_SQL with a db id only (no text at all).
    await expectFailureThenUsable(frame(Req.execSql, B.u64(0)), 1005, true);
    // ADD with an id but a truncated address.
    await expectFailureThenUsable(frame(Req.add, Buffer.concat([B.u64(1), Buffer.from('12345678')])), 1005);
    // Invalid UTF-8 in the database name and in SQL.
    const badName = Buffer.from([0xc3, 0x28, 0, 0, 0, 0, 0, 0, ...B.u64(0), ...B.text('volatile')]);
    await expectFailureThenUsable(frame(Req.open, badName), 1005);
    const badSql = Buffer.concat([B.u64(0), Buffer.from([0x53, 0xff, 0xfe, 0x00, 0, 0, 0, 0])]);
    await expectFailureThenUsable(frame(Req.querySql, badSql), 1005, true);
});

test('parameter tuples that lie → FAILURE, never a hang or a huge allocation', async () => {
    // Schema 0: 255 parameters announced, two values present.
    const header = Buffer.alloc(256);
    header[0] = 255;
    header.fill(1, 1, 256);
    const lie0 = Buffer.concat([B.u64(0), B.text('SELECT 1'), header, Buffer.alloc(16)]);
    await expectFailureThenUsable(frame(Req.execSql, lie0), 1005, true);
    // Schema 1: 2^32 - 1 parameters announced.
    const lie1 = Buffer.concat([B.u64(0), B.text('SELECT 1'), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 1, 1, 1])]);
    await expectFailureThenUsable(frame(Req.execSql, lie1, { schema: 1 }), 1005, true);
    // An unknown value type code (7) and one above 15 (200).
    for (const type of [7, 200]) {
        const bad = Buffer.concat([B.u64(0), B.text('SELECT ?'), Buffer.from([1, type, 0, 0, 0, 0, 0, 0]), B.u64(1)]);
        const reply = await answerTo(frame(Req.execSql, bad), { open: true });
        assert.ok(reply === 'closed' || reply.type === Res.failure);
    }
    // More parameters than SQLite allows in one statement: refused by the backend.
    const many = 300;
    const types = Buffer.alloc(Math.ceil((4 + many) / 8) * 8);
    types.writeUInt32LE(many, 0);
    types.fill(5, 4, 4 + many);
    const manyParams = Buffer.concat([B.u64(0), B.text('SELECT ?'), types, Buffer.alloc(8 * many)]);
    await expectFailureThenUsable(frame(Req.querySql, manyParams, { schema: 1 }), 25, true);
    await witnessWorks();
});

test('a malformed CONNECT closes the connection (what follows it is not requests)', async () => {
    assert.equal(await answerTo(frame(Req.connect, Buffer.from('12345678abcdefgh'))), 'closed');
    assert.equal(await answerTo(frame(Req.connect, B.u64(1))), 'closed');
    await witnessWorks();
});

test('bad schema bytes → FAILURE and the connection stays usable', async () => {
    await expectFailureThenUsable(frame(Req.cluster, B.u64(1), { schema: 3 }), 1005);
    await expectFailureThenUsable(frame(Req.querySql, B.sql('SELECT 1'), { schema: 9 }), 1, true);
});

test('unknown request types → FAILURE 1005 with the body skipped', async () => {
    for (const type of [2, 20, 100, 255]) {
        await expectFailureThenUsable(frame(type, Buffer.alloc(64, 0xab)), 1005);
    }
});

test('seeded garbage after a handshake never takes the server down', async () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    console.log(`seed ${seed}`);
    let state = seed >>> 0;
    const random = (n: number): number => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        return state % n;
    };
    for (let i = 0; i < 150; i++) {
        const client = await RawClient.open(fx.server.address);
        const chunks: Buffer[] = [];
        const count = 1 + random(4);
        for (let c = 0; c < count; c++) {
            // Mostly plausible headers (small sizes, real types) with random bodies.
            const words = random(4) === 0 ? random(0x7fffffff) : random(6);
            const header = Buffer.alloc(8);
            header.writeUInt32LE(words, 0);
            header[4] = random(3) === 0 ? random(256) : random(20);
            header[5] = random(4) === 0 ? random(256) : 0;
            const bytes = Buffer.alloc(Math.min(words, 8) * 8);
            for (let b = 0; b < bytes.length; b++) bytes[b] = random(256);
            chunks.push(header, bytes);
        }
        client.write(Buffer.concat(chunks));
        // Read whatever comes until the server stops talking or closes, then leave.
        client.write(frame(Req.leader, B.u64(0)));
        client.close();
        if (i % 25 === 0) await witnessWorks();
    }
    await witnessWorks();
});
