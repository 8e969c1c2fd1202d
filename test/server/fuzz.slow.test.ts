// Goal: thousands of fuzzed client sessions over real TCP never crash the gateway, never leak a
// socket, a file descriptor or an SQL session, and never stop it from serving a well-behaved
// client (TESTING.md §8(e), scaled to this machine).
// Method: a corpus of valid requests (every type 0–19, parameters of every type, schema 0 and
// 1) is mutated (bit flips, truncation, size-field lies, type and schema bytes, splices) and sent
// over several concurrent connections, in random chunks, after a valid, legacy, wrong or partial
// handshake; each session half-closes and reads until the server closes. A health probe runs
// every 250 sessions. The run is time-boxed (FUZZ_SECONDS, default 20) and seeded (SEED=n
// replays the same inputs; timing of concurrent sessions may still interleave differently).
// An uncaught exception anywhere in the server fails the test process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RawClient, LEGACY_VERSION, VERSION, frame } from './helpers/raw-client.js';
import { B, P, Req, openClient, startFixture } from './helpers/fixture.js';
import type { Fixture } from './helpers/fixture.js';
import { readRows } from './helpers/rows.js';

function openFds(): number {
    return readdirSync('/proc/self/fd').length;
}

function corpus(): Buffer[] {
    const params = [P.int(-1n), P.float(1.5), P.text('héllo'), P.blob(Buffer.from([1, 2])), P.null(), P.iso('2024-01-02'),
        P.bool(true)];
    return [
        frame(Req.leader, B.u64(0)),
        frame(Req.client, B.u64(0)),
        frame(Req.heartbeat, B.u64(1)),
        frame(Req.open, B.open('fuzz')),
        frame(Req.prepare, B.prepare('SELECT ?, ?, ?, ?, ?, ?, ?')),
        frame(Req.prepare, B.prepare('SELECT 1; SELECT 2'), { schema: 1 }),
        frame(Req.exec, B.stmt(0, params)),
        frame(Req.query, B.stmt(0, params)),
        frame(Req.query, B.stmt(1, params, 1), { schema: 1 }),
        frame(Req.finalize, B.stmt(0)),
        frame(Req.execSql, B.sql('CREATE TABLE IF NOT EXISTS f (a, b); INSERT INTO f VALUES (?, ?)', params.slice(0, 2))),
        frame(Req.querySql, B.sql('SELECT * FROM f LIMIT ?', [P.int(50n)])),
        frame(Req.querySql, B.sql('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) '
            + 'SELECT x FROM c')),
        frame(Req.execSql, B.sql('BEGIN')),
        frame(Req.execSql, B.sql('ROLLBACK')),
        frame(Req.interrupt, B.u64(0)),
        frame(Req.connect, B.idAddress(9n, '127.0.0.1:9')),
        frame(Req.add, B.idAddress(9n, '127.0.0.1:9')),
        frame(Req.assign, Buffer.concat([B.u64(9), B.u64(1)])),
        frame(Req.remove, B.u64(9)),
        frame(Req.dump, B.text('fuzz')),
        frame(Req.cluster, B.u64(1)),
        frame(Req.transfer, B.u64(0)),
        frame(Req.describe, B.u64(0)),
        frame(Req.weight, B.u64(3)),
    ];
}

class Random {
    private state: number;
    constructor(seed: number) {
        this.state = seed >>> 0;
    }
    int(n: number): number {
        this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
        return this.state % n;
    }
}

function mutate(input: Buffer, all: readonly Buffer[], random: Random): Buffer {
    const out = Buffer.from(input);
    switch (random.int(7)) {
        case 0: // flip a few bits anywhere
            for (let i = random.int(4); i >= 0; i--) {
                const at = random.int(out.length);
                out[at] = (out[at] as number) ^ (1 << random.int(8));
            }
            return out;
        case 1: // truncate
            return out.subarray(0, random.int(out.length));
        case 2: // lie about the size
            out.writeUInt32LE(random.int(4) === 0 ? random.int(0x7fffffff) : random.int(out.length / 8 + 3), 0);
            return out;
        case 3: // another type
            out[4] = random.int(4) === 0 ? random.int(256) : random.int(21);
            return out;
        case 4: // another schema byte
            out[5] = random.int(4) === 0 ? random.int(256) : random.int(3);
            return out;
        case 5: { // splice two messages
            const other = all[random.int(all.length)] as Buffer;
            return Buffer.concat([out.subarray(0, random.int(out.length)), other.subarray(random.int(other.length))]);
        }
        default: // unchanged
            return out;
    }
}

async function session(fx: Fixture, random: Random, inputs: readonly Buffer[]): Promise<void> {
    const handshake = [VERSION, VERSION, VERSION, LEGACY_VERSION, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]),
        VERSION.subarray(0, 3)][random.int(6)] as Buffer;
    const client = await RawClient.open(fx.server.address, null);
    const parts: Buffer[] = [handshake];
    const count = 1 + random.int(6);
    for (let i = 0; i < count; i++) {
        const input = inputs[random.int(inputs.length)] as Buffer;
        parts.push(random.int(3) === 0 ? input : mutate(input, inputs, random));
    }
    const bytes = Buffer.concat(parts);
    // Random chunking: the server must not care where TCP segments end.
    for (let at = 0; at < bytes.length;) {
        const size = 1 + random.int(64);
        client.write(bytes.subarray(at, at + size));
        at += size;
    }
    client.socket.end();
    // Drain everything the server says until it closes the connection.
    for (;;) {
        try {
            await client.read();
        } catch {
            break;
        }
    }
    await client.closed();
}

test('fuzzed TCP sessions: no crash, no leak, the server keeps serving', { timeout: 300_000 }, async () => {
    const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
    const seconds = Number(process.env['FUZZ_SECONDS'] ?? 20);
    console.log(`seed ${seed}, ${seconds} s`);
    const fx = await startFixture({ limits: { messageBytesMax: 1024 * 1024 } });
    // CONNECT is handed to a "peer transport" that closes the socket at once (a peer would own it).
    fx.backend.acceptPeers = false;
    const delay = monitorEventLoopDelay({ resolution: 10 });
    try {
        const inputs = corpus();
        const fdsBefore = openFds();
        delay.enable();
        const deadline = Date.now() + seconds * 1000;
        let sessions = 0;
        let probes = 0;
        const worker = async (lane: number): Promise<void> => {
            const random = new Random(seed * 31 + lane);
            while (Date.now() < deadline) {
                await session(fx, random, inputs);
                sessions++;
                if (sessions % 250 === 0) {
                    // Fuzzed ADD/ASSIGN/TRANSFER may have moved the fake leadership away: restore
                    // it, so that the probe checks the gateway, not the fake cluster.
                    fx.backend.servers = [{ id: fx.backend.id, address: fx.server.address, role: 'voter' }];
                    fx.backend.leaderId = fx.backend.id;
                    const probe = await openClient(fx, 'probe');
                    const rows = await readRows(probe, await probe.request(Req.querySql, B.sql('SELECT 41 + 1')));
                    assert.deepEqual(rows.rows, [[42n]], 'health probe');
                    probe.close();
                    probes++;
                }
            }
        };
        await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(worker));
        delay.disable();
        for (let i = 0; fx.server.connectionCount > 0; i++) {
            assert.ok(i < 100_000, `${fx.server.connectionCount} connections left`);
            await new Promise((resolve) => setImmediate(resolve));
        }
        for (let i = 0; openFds() > fdsBefore + 5; i++) {
            assert.ok(i < 100_000, `fds: ${fdsBefore} before, ${openFds()} after`);
            await new Promise((resolve) => setImmediate(resolve));
        }
        const p99 = delay.percentile(99) / 1e6;
        console.log(`${sessions} sessions, ${probes} probes, event-loop delay p99 ${p99.toFixed(1)} ms, `
            + `max ${(delay.max / 1e6).toFixed(1)} ms, fds ${fdsBefore} → ${openFds()}`);
        assert.equal(fx.backend.sessions.size, 0, 'every SQL session was closed');
        assert.ok(sessions >= 500, `only ${sessions} sessions`);
    } finally {
        await fx.close();
    }
});
