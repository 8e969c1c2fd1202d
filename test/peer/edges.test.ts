// Goal: the transport's edge behaviours: bytes the gateway read past CONNECT are not lost, a
// receiver refuses a snapshot whose checksum or offsets are wrong (and tells the sender), a
// peer that stops reading or goes silent is cut off, the inbound limit holds, and an address
// change moves the link.
// Method: real transports and raw sockets on 127.0.0.1; the timeouts run on a ManualClock that
// the test advances once the transport has armed the timer, so nothing depends on wall time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { once } from 'node:events';
import { encodeFrame, encodeMessage, FrameDecoder } from '../../src/peer/codec.js';
import type { PeerFrame } from '../../src/peer/codec.js';
import { PeerTransport } from '../../src/peer/transport.js';
import type { InstallSnapshot, Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { crc32c } from '../../src/lib/crc32c.js';
import { Inbox, rawPeer, RecordingClock, TestGateway, waitUntil, withDeadline } from './helpers/gateway.js';

function vote(from: NodeId, to: NodeId, term: number): Message {
    return { type: 'requestVote', term, from, to, lastIndex: 1, lastTerm: 1, preVote: false, transfer: false };
}

const install: InstallSnapshot = {
    type: 'installSnapshot', term: 2, from: 1n, to: 2n,
    meta: { index: 10, term: 2, configurationIndex: 1, configuration: { servers: [] } },
};

async function node(id: NodeId, options: Partial<ConstructorParameters<typeof PeerTransport>[0]> = {}): Promise<{
    transport: PeerTransport; gateway: TestGateway; inbox: Inbox; unreachable: NodeId[];
}> {
    const gateway = await TestGateway.listen(undefined);
    const inbox = new Inbox();
    const unreachable: NodeId[] = [];
    const transport = new PeerTransport({
        id, address: gateway.address, onMessage: inbox.push, onUnreachable: (p) => void unreachable.push(p),
        limits: { backoffInitialMs: 10, backoffMaxMs: 40 }, ...options,
    });
    gateway.target = transport;
    return { transport, gateway, inbox, unreachable };
}

/** Reads frames the transport writes back on a raw connection. */
function frameReader(socket: Socket): () => Promise<PeerFrame> {
    const decoder = new FrameDecoder(1 << 20);
    const frames: PeerFrame[] = [];
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
        wake?.();
    });
    return async () => {
        while (frames.length === 0) await withDeadline(new Promise<void>((r) => (wake = r)), 5000, 'a frame');
        return frames.shift() as PeerFrame;
    };
}

test('frames that arrived with the CONNECT request (the hand-off leftover) are delivered', async () => {
    const b = await node(2n);
    try {
        const first = Buffer.concat([encodeMessage(vote(1n, 2n, 1)), encodeMessage(vote(1n, 2n, 2))]);
        const raw = await rawPeer(b.gateway.port, 1n, '127.0.0.1:1', first);
        await b.inbox.next((m) => m.term === 2);
        assert.deepEqual(b.inbox.messages.map((m) => m.term), [1, 2]);
        raw.destroy();
    } finally {
        await b.transport.close();
        await b.gateway.close();
    }
});

test('a snapshot with a bad checksum or a gap is refused, the sink aborted, nothing delivered', async () => {
    const aborted: string[] = [];
    const b = await node(2n, {
        onSnapshot: () => ({
            write: () => undefined,
            finish: () => assert.fail('no finish'),
            abort: (e) => void aborted.push((e as { code?: string }).code ?? e.message),
        }),
    });
    try {
        const data = new Uint8Array([1, 2, 3, 4, 5]);
        // Wrong checksum: answered with a failed ack.
        const raw = await rawPeer(b.gateway.port, 1n, '127.0.0.1:1');
        const read = frameReader(raw);
        raw.write(Buffer.concat([
            encodeFrame({ kind: 'snapshotBegin', transferId: 5, message: install }),
            encodeFrame({ kind: 'snapshotChunk', transferId: 5, offset: 0, data }),
            encodeFrame({ kind: 'snapshotEnd', transferId: 5, totalBytes: 5, checksum: crc32c(data) ^ 1 }),
        ]));
        const ack = await read();
        assert.equal(ack.kind, 'snapshotAck');
        assert.equal(ack.kind === 'snapshotAck' && ack.ok, false);
        await withDeadline(once(raw, 'close'), 5000, 'the connection to close');
        // A gap in the offsets: the connection is cut.
        const raw2 = await rawPeer(b.gateway.port, 1n, '127.0.0.1:1');
        raw2.write(Buffer.concat([
            encodeFrame({ kind: 'snapshotBegin', transferId: 6, message: install }),
            encodeFrame({ kind: 'snapshotChunk', transferId: 6, offset: 3, data }),
        ]));
        await withDeadline(once(raw2, 'close'), 5000, 'the connection to close');
        await waitUntil(() => aborted.length === 2, 'both sinks aborted');
        assert.deepEqual(aborted, ['ERR_PROTOCOL', 'ERR_PROTOCOL']);
        assert.equal(b.inbox.messages.length, 0);
        // A snapshot from a node other than the one that connected is refused outright.
        const raw3 = await rawPeer(b.gateway.port, 3n, '127.0.0.1:1');
        raw3.write(encodeFrame({ kind: 'snapshotBegin', transferId: 7, message: install }));
        await withDeadline(once(raw3, 'close'), 5000, 'the connection to close');
        assert.equal(aborted.length, 2, 'no sink was opened');
    } finally {
        await b.transport.close();
        await b.gateway.close();
    }
});

test('a peer that stops reading is cut after writeStallMs and reported unreachable', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
        sockets.add(s);
        s.pause(); // never read
        s.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const clock = new RecordingClock();
    const unreachable: NodeId[] = [];
    const a = new PeerTransport({
        id: 1n, address: '127.0.0.1:1', clock, onMessage: () => undefined,
        onUnreachable: (id) => void unreachable.push(id),
        limits: { writeStallMs: 7777, queueBytesMax: 256 * 1024 * 1024 },
    });
    try {
        a.setPeers([{ id: 2n, address: `127.0.0.1:${port}` }]);
        const big = (term: number): Message => ({
            type: 'appendEntries', term, from: 1n, to: 2n, prevIndex: 0, prevTerm: 0, commit: 0, readRound: 0,
            entries: [{ term, index: 1, type: 1, data: new Uint8Array(1 << 20) }],
        });
        // 64 MiB: far more than the kernel buffers of a connection whose reader never reads.
        for (let term = 1; term <= 64; term++) a.send(big(term));
        const stalled = (): boolean => {
            const peer = a.stats().peers[0];
            return peer?.connected === true && peer.awaitingDrain && peer.queuedMessages > 0;
        };
        await waitUntil(() => stalled() && clock.delays.includes(7777), 'the stall timer');
        assert.equal(unreachable.length, 0);
        clock.manual.advance(7777);
        await waitUntil(() => unreachable.includes(2n), 'the unreachable report');
        assert.equal(a.stats().peers[0]?.connected, false);
    } finally {
        await a.close();
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
    }
});

test('an inbound connection silent for inboundIdleMs is closed; the sender redials on demand', async () => {
    const clock = new RecordingClock();
    const a = await node(1n);
    const b = await node(2n, { clock, limits: { inboundIdleMs: 30_000 } });
    try {
        const book = [{ id: 1n, address: a.gateway.address }, { id: 2n, address: b.gateway.address }];
        a.transport.setPeers(book);
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next();
        assert.equal(b.transport.stats().inboundConnections, 1);
        clock.manual.advance(30_000);
        await waitUntil(() => b.transport.stats().inboundConnections === 0 && a.unreachable.includes(2n),
            'the idle connection to close');
        a.transport.send(vote(1n, 2n, 2));
        await b.inbox.next((m) => m.term === 2);
    } finally {
        await a.transport.close();
        await b.transport.close();
        await a.gateway.close();
        await b.gateway.close();
    }
});

test('accept() refuses over the inbound limit, from itself, and once closed', async () => {
    const b = await node(2n, { limits: { inboundConnectionsMax: 1 } });
    try {
        const first = await rawPeer(b.gateway.port, 1n, '127.0.0.1:1', encodeMessage(vote(1n, 2n, 1)));
        await b.inbox.next();
        const second = await rawPeer(b.gateway.port, 3n, '127.0.0.1:1');
        await withDeadline(once(second, 'close'), 5000, 'the refused connection to close');
        const self = await rawPeer(b.gateway.port, 2n, '127.0.0.1:1');
        await withDeadline(once(self, 'close'), 5000, 'the connection from itself to close');
        assert.equal(b.transport.stats().refusedConnections, 2);
        first.destroy();
    } finally {
        await b.transport.close();
        await b.gateway.close();
    }
    const late = new Socket();
    assert.equal(b.transport.accept(late, { id: 1n, address: '127.0.0.1:1' }), false);
    late.destroy();
});

test('setPeers with a new address moves the link to it', async () => {
    const a = await node(1n);
    const b1 = await node(2n);
    const b2 = await node(2n);
    try {
        a.transport.setPeers([{ id: 2n, address: b1.gateway.address }]);
        a.transport.send(vote(1n, 2n, 1));
        await b1.inbox.next();
        a.transport.setPeers([{ id: 2n, address: b2.gateway.address }]);
        a.transport.send(vote(1n, 2n, 2));
        await b2.inbox.next((m) => m.term === 2);
        assert.deepEqual(b1.inbox.messages.map((m) => m.term), [1]);
    } finally {
        for (const n of [a, b1, b2]) {
            await n.transport.close();
            await n.gateway.close();
        }
    }
});

test('a peer missing from the address book is answered on the connection it opened', async () => {
    const a = await node(1n);
    const b = await node(2n); // b's address book stays empty: it does not know a yet
    try {
        a.transport.setPeers([{ id: 2n, address: b.gateway.address }]);
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next();
        b.transport.send(vote(2n, 1n, 2));
        const reply = await a.inbox.next();
        assert.equal(reply.term, 2);
        b.transport.send(vote(2n, 3n, 2)); // nobody: reported
        await waitUntil(() => b.unreachable.includes(3n), 'the unknown peer to be reported');
        assert.deepEqual(b.unreachable, [3n]);
    } finally {
        await a.transport.close();
        await b.transport.close();
        await a.gateway.close();
        await b.gateway.close();
    }
});

test('a message larger than frameBytesMax is dropped at the sender, not sent to be refused', async () => {
    const unreachable: NodeId[] = [];
    const a = new PeerTransport({
        id: 1n, address: '127.0.0.1:1', onMessage: () => undefined, onUnreachable: (id) => void unreachable.push(id),
        limits: { frameBytesMax: 1024, snapshotChunkBytes: 512 },
    });
    try {
        a.setPeers([{ id: 2n, address: '127.0.0.1:1' }]);
        a.send({
            type: 'appendEntries', term: 1, from: 1n, to: 2n, prevIndex: 0, prevTerm: 0, commit: 0, readRound: 0,
            entries: [{ term: 1, index: 1, type: 1, data: new Uint8Array(2000) }],
        });
        await waitUntil(() => unreachable.includes(2n), 'the drop to be reported');
        assert.equal(a.stats().peers[0]?.queuedMessages, 0);
        assert.equal(a.stats().peers[0]?.dials, 0);
    } finally {
        await a.close();
    }
});

test('one snapshot per peer at a time (BusyError); the receiver caps concurrent snapshots', async () => {
    let opened = 0;
    const b = await node(2n, {
        limits: { snapshotsInboundMax: 1 },
        onSnapshot: () => {
            opened++;
            return { write: () => undefined, finish: () => undefined, abort: () => undefined };
        },
    });
    const a = await node(1n);
    async function* endless(): AsyncGenerator<Uint8Array> {
        for (;;) yield new Uint8Array(16 * 1024);
    }
    try {
        a.transport.setPeers([{ id: 2n, address: b.gateway.address }]);
        const first = a.transport.sendSnapshot(install, endless());
        first.catch(() => undefined);
        await assert.rejects(a.transport.sendSnapshot(install, endless()), { code: 'ERR_BUSY' });
        await waitUntil(() => opened === 1, 'the first transfer to start');
        // A second sender (a raw peer) is refused while the first is still receiving.
        const raw = await rawPeer(b.gateway.port, 1n, '127.0.0.1:1');
        const read = frameReader(raw);
        raw.write(encodeFrame({ kind: 'snapshotBegin', transferId: 99, message: install }));
        const ack = await read();
        assert.ok(ack.kind === 'snapshotAck' && !ack.ok && /too many/.test(ack.reason), JSON.stringify(ack));
        assert.equal(opened, 1);
        raw.destroy();
    } finally {
        await a.transport.close();
        await b.transport.close();
        await a.gateway.close();
        await b.gateway.close();
    }
});

test('terms and indexes past 2^52, and a snapshot newer than its message, are decode errors', () => {
    // A term of 2^53 - 1 from a peer made the next election's term (term + 1) unrepresentable.
    const decode = (frame: Buffer): Message => {
        const decoder = new FrameDecoder(1 << 20);
        decoder.push(frame);
        const decoded = decoder.next();
        assert.ok(decoded?.kind === 'message');
        return decoded.message;
    };
    assert.equal(decode(encodeMessage(vote(1n, 2n, 2 ** 52))).term, 2 ** 52);
    assert.throws(() => decode(encodeMessage(vote(1n, 2n, 2 ** 52 + 1))),
        { code: 'ERR_PROTOCOL', message: /term \d+ is past/ });
    assert.throws(() => decode(encodeMessage({ type: 'appendEntries', term: 3, from: 1n, to: 2n,
        prevIndex: Number.MAX_SAFE_INTEGER, prevTerm: 1, entries: [], commit: 0, readRound: 0 })),
    { message: /prevIndex \d+ is past 2\^52/ });
    const meta = { index: 10, term: 4, configurationIndex: 1,
        configuration: { servers: [{ id: 1n, address: 'a:1', role: 'voter' as const }] } };
    assert.throws(() => decode(encodeMessage({ type: 'installSnapshot', term: 3, from: 1n, to: 2n, meta })),
        { message: /snapshot term 4 past/ });
    assert.equal(decode(encodeMessage({ type: 'installSnapshot', term: 4, from: 1n, to: 2n, meta })).type,
        'installSnapshot');
});
