// Goal: PeerTransport moves raft messages between real nodes over TCP, survives peers going
// away and coming back, bounds what it holds for a down peer, streams snapshots with flow
// control, and confines a misbehaving connection's damage to that connection.
// Method: two or three transports on 127.0.0.1, each behind a TestGateway (port 0) that does the
// dqlite handshake + CONNECT hand-off; waits are on delivered messages or callbacks, each with a
// deadline; the backoff schedule is read from a recording ManualClock, not measured.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { crc32c } from '../../src/lib/crc32c.js';
import { PeerTransport } from '../../src/peer/transport.js';
import type { PeerTransportOptions } from '../../src/peer/transport.js';
import type { SnapshotSink } from '../../src/peer/snapshot.js';
import { encodeMessage } from '../../src/peer/codec.js';
import type { InstallSnapshot, Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { Inbox, rawPeer, RecordingClock, TestGateway, waitUntil, withDeadline } from './helpers/gateway.js';

const FAST = { backoffInitialMs: 10, backoffMaxMs: 40 };

interface TestNode {
    id: NodeId;
    transport: PeerTransport;
    gateway: TestGateway;
    inbox: Inbox;
    unreachable: NodeId[];
}

async function startNode(id: NodeId, options: Partial<PeerTransportOptions> = {}, port = 0): Promise<TestNode> {
    const gateway = await TestGateway.listen(undefined, port);
    const inbox = new Inbox();
    const unreachable: NodeId[] = [];
    const transport = new PeerTransport({
        id,
        address: gateway.address,
        onMessage: inbox.push,
        onUnreachable: (peer) => unreachable.push(peer),
        limits: FAST,
        ...options,
    });
    gateway.target = transport;
    return { id, transport, gateway, inbox, unreachable };
}

async function stopNode(node: TestNode): Promise<void> {
    await node.transport.close();
    await node.gateway.close();
}

function connectAll(nodes: TestNode[]): void {
    const book = nodes.map((n) => ({ id: n.id, address: n.gateway.address }));
    for (const n of nodes) n.transport.setPeers(book);
}

function vote(from: NodeId, to: NodeId, term: number): Message {
    return { type: 'requestVote', term, from, to, lastIndex: 5, lastTerm: 1, preVote: false, transfer: false };
}

function append(from: NodeId, to: NodeId, term: number, size: number): Message {
    return {
        type: 'appendEntries', term, from, to, prevIndex: 0, prevTerm: 0, commit: 0, readRound: 0,
        entries: [{ term, index: 1, type: 1, data: new Uint8Array(size).fill(term % 256) }],
    };
}

test('two transports deliver messages both ways, in order', async () => {
    const a = await startNode(1n);
    const b = await startNode(2n);
    try {
        connectAll([a, b]);
        for (let term = 1; term <= 50; term++) a.transport.send(vote(1n, 2n, term));
        b.transport.send(append(2n, 1n, 3, 100_000));
        const last = await b.inbox.next((m) => m.term === 50);
        assert.equal(last.type, 'requestVote');
        assert.deepEqual(b.inbox.messages.map((m) => m.term), Array.from({ length: 50 }, (_, i) => i + 1));
        const got = await a.inbox.next();
        assert.deepEqual(got, append(2n, 1n, 3, 100_000));
        assert.deepEqual(a.unreachable, []);
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

test('three transports: every pair talks', async () => {
    const nodes = [await startNode(1n), await startNode(2n), await startNode(3n)];
    try {
        connectAll(nodes);
        for (const from of nodes) {
            for (const to of nodes) if (from !== to) from.transport.send(vote(from.id, to.id, Number(from.id) * 10));
        }
        for (const to of nodes) {
            for (const from of nodes) {
                if (from !== to) await to.inbox.next((m) => m.from === from.id);
            }
            assert.equal(to.inbox.messages.length, 2);
        }
    } finally {
        for (const n of nodes) await stopNode(n);
    }
});

test('a peer that restarts is reached again after backoff', async () => {
    const a = await startNode(1n);
    let b = await startNode(2n);
    const port = b.gateway.port;
    try {
        connectAll([a, b]);
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next();
        await stopNode(b);
        // While b is down, a reports it unreachable and keeps (a bounded number of) messages.
        a.transport.send(vote(1n, 2n, 2));
        await waitUntil(() => a.unreachable.includes(2n), 'unreachable report');
        b = await startNode(2n, {}, port);
        b.transport.setPeers([{ id: 1n, address: a.gateway.address }]);
        a.transport.send(vote(1n, 2n, 3));
        const got = await b.inbox.next((m) => m.term === 3);
        assert.equal(got.term, 3);
        b.transport.send(vote(2n, 1n, 4));
        await a.inbox.next((m) => m.term === 4);
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

async function closedPort(): Promise<number> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address !== null && typeof address !== 'string');
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return address.port;
}

test('a down peer: bounded queue, oldest dropped, unreachable reported, backoff 100 ms doubling to 1 s', async () => {
    const clock = new RecordingClock();
    const unreachable: NodeId[] = [];
    const transport = new PeerTransport({
        id: 1n,
        address: '127.0.0.1:1',
        clock,
        onMessage: () => assert.fail('no message expected'),
        onUnreachable: (id) => void unreachable.push(id),
        limits: { queueMessagesMax: 10, backoffInitialMs: 100, backoffMaxMs: 1000, dialTimeoutMs: 60_000 },
    });
    const backoffs = (): number[] => clock.delays.filter((d) => d >= 100 && d <= 1000);
    try {
        transport.setPeers([{ id: 2n, address: `127.0.0.1:${await closedPort()}` }]);
        for (let term = 1; term <= 25; term++) transport.send(vote(1n, 2n, term));
        const stats = transport.stats().peers[0];
        assert.equal(stats?.queuedMessages, 10);
        assert.equal(stats?.droppedMessages, 15);
        await waitUntil(() => unreachable.includes(2n), 'the overflow to be reported');
        // An unknown peer is reported too, and send() never throws.
        transport.send(vote(1n, 9n, 1));
        await waitUntil(() => unreachable.includes(9n), 'the unknown peer to be reported');
        // Each refused dial reports the peer and arms a redial: 100, 200, 400, 800, 1000, 1000 ms.
        for (let attempt = 0; attempt < 6; attempt++) {
            const reports = unreachable.length;
            await waitUntil(() => backoffs().length === attempt + 1, `redial timer ${attempt + 1}`);
            assert.ok(unreachable.length >= reports);
            assert.equal(transport.stats().peers[0]?.dials, attempt + 1);
            clock.manual.advance(backoffs()[attempt] as number);
        }
        assert.deepEqual(backoffs().slice(0, 6), [100, 200, 400, 800, 1000, 1000]);
        assert.ok(unreachable.filter((id) => id === 2n).length >= 6, 'every refused dial is reported');
        assert.equal(transport.stats().peers[0]?.queuedMessages, 10);
    } finally {
        await transport.close();
    }
    assert.equal(clock.manual.pendingCount, 0, 'every timer cancelled by close');
});

test('malformed frames close only the offending connection', async () => {
    const a = await startNode(1n);
    const b = await startNode(2n);
    try {
        connectAll([a, b]);
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next();
        const cases: Buffer[] = [
            Buffer.from('this is not a frame at all, but it is long enough'),
            (() => {
                const f = encodeMessage(vote(1n, 2n, 7));
                f[f.length - 1] = (f[f.length - 1] as number) ^ 1; // CRC mismatch
                return f;
            })(),
            encodeMessage(vote(3n, 2n, 7)), // from a node other than the one that connected
            encodeMessage(vote(1n, 5n, 7)), // addressed to someone else
            (() => {
                const f = Buffer.alloc(12);
                f.writeUInt32LE(0xfffffff0, 0); // a 4 GiB frame
                f.writeUInt8(1, 4);
                return f;
            })(),
        ];
        for (const bytes of cases) {
            const raw = await rawPeer(b.gateway.port, 1n, a.gateway.address);
            raw.write(bytes);
            await withDeadline(once(raw, 'close'), 5000, 'the bad connection to close');
        }
        assert.equal(b.transport.stats().protocolErrors, cases.length);
        // The good connection still works, and nothing bad was delivered.
        a.transport.send(vote(1n, 2n, 2));
        await b.inbox.next((m) => m.term === 2);
        assert.deepEqual(b.inbox.messages.map((m) => m.term), [1, 2]);
        // A duplicate (raw) connection from the same peer delivers too.
        const raw = await rawPeer(b.gateway.port, 1n, a.gateway.address);
        raw.write(encodeMessage(vote(1n, 2n, 3)));
        await b.inbox.next((m) => m.term === 3);
        raw.destroy();
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

test('setPeers: a removed peer loses its connection and its queue', async () => {
    const a = await startNode(1n);
    const b = await startNode(2n);
    try {
        connectAll([a, b]);
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next();
        assert.equal(b.transport.stats().inboundConnections, 1);
        a.transport.setPeers([{ id: 1n, address: a.gateway.address }]);
        assert.deepEqual(a.transport.stats().peers, []);
        a.transport.send(vote(1n, 2n, 2)); // unknown now: dropped, reported
        await waitUntil(() => b.transport.stats().inboundConnections === 0 && a.unreachable.includes(2n),
            'the connection to drop');
        assert.deepEqual(b.inbox.messages.map((m) => m.term), [1]);
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

// ---- snapshots ----

function snapshotMessage(from: NodeId, to: NodeId): InstallSnapshot {
    return {
        type: 'installSnapshot', term: 4, from, to,
        meta: {
            index: 500, term: 3, configurationIndex: 1,
            configuration: {
                servers: [{ id: from, address: 'a:1', role: 'voter' }, { id: to, address: 'b:1', role: 'voter' }],
            },
        },
    };
}

/** Deterministic pseudo-random bytes, produced lazily in `chunkBytes` pieces. */
async function* generate(totalBytes: number, chunkBytes: number,
    progress: { produced: number }): AsyncGenerator<Uint8Array> {
    let state = 12345;
    for (let at = 0; at < totalBytes; at += chunkBytes) {
        const chunk = new Uint8Array(Math.min(chunkBytes, totalBytes - at));
        for (let i = 0; i < chunk.length; i += 4) {
            state = (Math.imul(state, 1103515245) + 12345) | 0;
            chunk[i] = state & 0xff;
        }
        progress.produced += chunk.length;
        yield chunk;
    }
}

test('a 50 MB snapshot streams in chunks with bounded memory, then InstallSnapshot is delivered', async () => {
    const total = 50 * 1024 * 1024;
    const progress = { produced: 0 };
    let consumed = 0;
    let maxInFlight = 0;
    let crc = 0;
    let writes = 0;
    let finished = false;
    const baseline = process.memoryUsage().arrayBuffers;
    let peakArrayBuffers = 0;
    const sink: SnapshotSink = {
        async write(chunk) {
            writes++;
            crc = crc32c(chunk, crc);
            consumed += chunk.length;
            maxInFlight = Math.max(maxInFlight, progress.produced - consumed);
            if (writes % 16 === 0) peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
            // A slowish disk: yield to the event loop so the sender must wait for TCP.
            await new Promise<void>((resolve) => setImmediate(resolve));
        },
        finish() {
            finished = true;
        },
        abort: () => assert.fail('not aborted'),
    };
    const a = await startNode(1n);
    const b = await startNode(2n, { onSnapshot: () => sink });
    try {
        connectAll([a, b]);
        const expectedCrc = (() => {
            let c = 0;
            const p = { produced: 0 };
            const it = generate(total, 1 << 20, p);
            return (async () => {
                for await (const chunk of it) c = crc32c(chunk, c);
                return c;
            })();
        })();
        const started = performance.now();
        await withDeadline(a.transport.sendSnapshot(snapshotMessage(1n, 2n), generate(total, 1 << 20, progress)),
            60_000, 'the snapshot');
        const ms = performance.now() - started;
        const delivered = await b.inbox.next((m) => m.type === 'installSnapshot');
        assert.deepEqual(delivered, snapshotMessage(1n, 2n));
        assert.ok(finished);
        assert.equal(consumed, total);
        assert.equal(crc, await expectedCrc);
        assert.ok(writes >= total / a.transport.limits.snapshotChunkBytes);
        // Never more than a fraction of the snapshot between the source and the sink.
        assert.ok(maxInFlight < 24 * 1024 * 1024, `in flight ${maxInFlight}`);
        console.log(`50 MB snapshot: ${ms.toFixed(0)} ms, max in flight ${(maxInFlight / 1048576).toFixed(1)} MiB, ` +
            `arrayBuffers peak +${((peakArrayBuffers - baseline) / 1048576).toFixed(1)} MiB`);
        assert.equal(a.transport.stats().snapshotsSending, 0);
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

test('snapshot failures reach the sender: refused offer, sink error, source error', async () => {
    let mode: 'refuse' | 'sinkError' | 'ok' = 'refuse';
    const aborted: string[] = [];
    const a = await startNode(1n);
    const b = await startNode(2n, {
        onSnapshot: () => {
            if (mode === 'refuse') throw new Error('no room');
            return {
                write: () => {
                    if (mode === 'sinkError') throw new Error('disk on fire');
                },
                finish: () => undefined,
                abort: (reason) => void aborted.push(reason.message),
            };
        },
    });
    const one = async function* (): AsyncGenerator<Uint8Array> {
        yield new Uint8Array(1000);
    };
    try {
        connectAll([a, b]);
        await assert.rejects(a.transport.sendSnapshot(snapshotMessage(1n, 2n), one()), { code: 'ERR_UNAVAILABLE' });
        mode = 'sinkError';
        await assert.rejects(a.transport.sendSnapshot(snapshotMessage(1n, 2n), one()), { code: 'ERR_UNAVAILABLE' });
        mode = 'ok';
        let returned = false;
        const failing = {
            [Symbol.asyncIterator]: () => ({
                next: () => Promise.reject(new Error('source broke')),
                return: () => {
                    returned = true;
                    return Promise.resolve({ done: true as const, value: undefined });
                },
            }),
        };
        await assert.rejects(a.transport.sendSnapshot(snapshotMessage(1n, 2n), failing), /source broke/);
        assert.equal(returned, false, 'a source that threw is not closed again');
        await waitUntil(() => aborted.length === 1, 'the failed sink to be aborted');
        assert.equal(aborted[0], 'disk on fire');
        // Still usable: a good transfer after the failures.
        await a.transport.sendSnapshot(snapshotMessage(1n, 2n), one());
        await b.inbox.next((m) => m.type === 'installSnapshot');
        assert.equal(b.inbox.messages.filter((m) => m.type === 'installSnapshot').length, 1);
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});

test('closing mid-snapshot rejects the sender with ClosedError and aborts the sink', async () => {
    let abortedWith: Error | undefined;
    let firstWrite: (() => void) | undefined;
    const gotWrite = new Promise<void>((r) => (firstWrite = r));
    const a = await startNode(1n);
    const b = await startNode(2n, {
        onSnapshot: () => ({
            write: () => firstWrite?.(),
            finish: () => assert.fail('must not finish'),
            abort: (reason) => void (abortedWith = reason),
        }),
    });
    let sourceClosed = false;
    const endless = async function* (): AsyncGenerator<Uint8Array> {
        try {
            for (;;) yield new Uint8Array(64 * 1024);
        } finally {
            sourceClosed = true;
        }
    };
    try {
        connectAll([a, b]);
        const sending = a.transport.sendSnapshot(snapshotMessage(1n, 2n), endless());
        sending.catch(() => undefined);
        await withDeadline(gotWrite, 5000, 'the first chunk');
        await a.transport.close();
        await assert.rejects(sending, { code: 'ERR_CLOSED' });
        assert.ok(sourceClosed, 'the source was closed by close()');
        await b.transport.close();
        assert.ok(abortedWith !== undefined, 'the sink was aborted by the time close() resolved');
    } finally {
        await stopNode(a);
        await stopNode(b);
    }
});
