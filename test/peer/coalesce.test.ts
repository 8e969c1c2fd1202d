// Goal: the frames written to one peer in one event-loop turn leave in one socket write (a
// writev of the very Buffers given, so a multi-MiB entry is not copied to be concatenated), arrive
// intact and in order, keep the write()/'drain' backpressure contract, and a close while such a
// coalesced write is still pending neither throws, nor leaks a handle, nor writes afterwards.
// Method: a PeerConnection over a real loopback socket whose _write/_writev are wrapped to record
// every write handed to libuv; the receiving end decodes the byte stream with FrameDecoder. Then
// the same through two PeerTransports behind test gateways (sends in one turn, close in the same
// turn as the sends). Waits are on received frames or callbacks, each with a deadline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { encodeMessage, FrameDecoder } from '../../src/peer/codec.js';
import type { PeerFrame } from '../../src/peer/codec.js';
import { PeerConnection } from '../../src/peer/connection.js';
import { PeerTransport } from '../../src/peer/transport.js';
import type { Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { Inbox, TestGateway, waitUntil, withDeadline } from './helpers/gateway.js';

const FRAME_MAX = 64 * 1024 * 1024;

function append(term: number, size: number): Message {
    return {
        type: 'appendEntries', term, from: 1n, to: 2n, prevIndex: term - 1, prevTerm: 0, commit: 0, readRound: 0,
        entries: [{ term, index: term, type: 1, data: new Uint8Array(size).fill(term % 251) }],
    };
}

function vote(from: NodeId, to: NodeId, term: number): Message {
    return { type: 'requestVote', term, from, to, lastIndex: 1, lastTerm: 1, preVote: false, transfer: false };
}

/** Both ends of a loopback TCP connection; the receiving end decodes frames as they arrive. */
async function socketPair(): Promise<{ server: Server; sender: Socket; received: PeerFrame[]; receiver: Socket }> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert(address !== null && typeof address === 'object');
    const accepted = once(server, 'connection');
    const sender = connect({ host: '127.0.0.1', port: address.port });
    sender.on('error', () => undefined);
    await once(sender, 'connect');
    const [receiver] = (await accepted) as [Socket];
    receiver.on('error', () => undefined);
    const received: PeerFrame[] = [];
    const decoder = new FrameDecoder(FRAME_MAX);
    receiver.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) received.push(f);
    });
    return { server, sender, received, receiver };
}

/** Records what the socket hands to libuv: one entry per _write or _writev, with its chunks. */
function recordWrites(socket: Socket): Buffer[][] {
    const writes: Buffer[][] = [];
    const plain = socket._write.bind(socket);
    const vectored = socket._writev?.bind(socket);
    assert(vectored !== undefined, 'net.Socket has _writev');
    socket._write = (chunk: Buffer, encoding: BufferEncoding, cb: (error?: Error | null) => void): void => {
        writes.push([chunk]);
        plain(chunk, encoding, cb);
    };
    socket._writev = (chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (error?: Error | null) => void) => {
        writes.push(chunks.map((c) => c.chunk));
        vectored(chunks, cb);
    };
    return writes;
}

function connection(socket: Socket, onClose: () => void = () => undefined, onDrain = (): void => undefined) {
    return new PeerConnection({
        socket,
        peerId: 2n,
        direction: 'outbound',
        clock: systemClock,
        logger: silentLogger,
        frameBytesMax: FRAME_MAX,
        writeStallMs: 0,
        handlers: { onFrame: () => undefined, onClose, onDrain },
    });
}

function nextTurn(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

test('frames written in one turn leave in one writev of the same Buffers, intact and in order', async () => {
    const { server, sender, received, receiver } = await socketPair();
    const writes = recordWrites(sender);
    let drains = 0;
    const c = connection(sender, undefined, () => drains++);
    try {
        // A small vote, a 3 MiB entry, then small ones: one turn.
        const messages = [
            vote(1n, 2n, 1), append(2, 3 * 1024 * 1024), vote(1n, 2n, 3), append(4, 100), vote(1n, 2n, 5),
        ];
        const frames = messages.map(encodeMessage);
        const verdicts = frames.map((f) => c.write(f));
        assert.equal(writes.length, 0, 'nothing reaches the socket before the turn ends');
        // Backpressure is still reported at once: the 3 MiB frame overflows the socket's buffer.
        assert.deepEqual(verdicts, [true, false, false, false, false]);
        assert.equal(c.isAwaitingDrain, true);
        await nextTurn();
        assert.equal(writes.length, 1, 'one socket write for the whole turn');
        const only = writes[0] as Buffer[];
        assert.equal(only.length, frames.length);
        for (let i = 0; i < frames.length; i++) assert.equal(only[i], frames[i], `frame ${i} is not copied`);
        await waitUntil(() => received.length === messages.length, 'all frames received', 10_000);
        assert.deepEqual(received, messages.map((message) => ({ kind: 'message', message })));
        await waitUntil(() => drains === 1, "the overflow's drain");
        assert.equal(c.isAwaitingDrain, false);

        // The next turn is its own write; a lone frame goes by _write.
        c.write(encodeMessage(vote(1n, 2n, 6)));
        await nextTurn();
        assert.equal(writes.length, 2);
        assert.equal((writes[1] as Buffer[]).length, 1);
        await waitUntil(() => received.length === messages.length + 1, 'the next turn\'s frame');
    } finally {
        c.destroy();
        await withDeadline(c.closed, 5000, 'connection closed');
        receiver.destroy();
        server.close();
    }
});

test('destroy in the turn of the writes: pending frames are handed over first, nothing after, one close', async () => {
    const { server, sender, received, receiver } = await socketPair();
    const writes = recordWrites(sender);
    let closes = 0;
    const c = connection(sender, () => closes++);
    try {
        const messages = [vote(1n, 2n, 1), vote(1n, 2n, 2), append(3, 1000)];
        for (const m of messages) c.write(encodeMessage(m));
        c.destroy();
        c.destroy();
        assert.equal(c.isOpen, false);
        assert.throws(() => c.write(encodeMessage(vote(1n, 2n, 4))), /not open/);
        await withDeadline(c.closed, 5000, 'connection closed');
        await nextTurn(); // the turn's scheduled flush ran on a closed socket: a no-op
        assert.equal(closes, 1);
        assert.ok(writes.length <= 1, 'at most the one coalesced write');
        // Whatever arrived is a prefix of what was written, intact and in order.
        await new Promise((resolve) => receiver.once('close', resolve));
        assert.deepEqual(received, messages.slice(0, received.length).map((message) => ({ kind: 'message', message })));
    } finally {
        receiver.destroy();
        server.close();
    }
});

async function startNode(id: NodeId): Promise<{ transport: PeerTransport; gateway: TestGateway; inbox: Inbox }> {
    const gateway = await TestGateway.listen(undefined, 0);
    const inbox = new Inbox();
    const transport = new PeerTransport({ id, address: gateway.address, onMessage: inbox.push,
        limits: { backoffInitialMs: 10, backoffMaxMs: 40 } });
    gateway.target = transport;
    return { transport, gateway, inbox };
}

test('a transport: many sends in one turn arrive in order; close in the turn of sends is clean', async () => {
    const handlesBefore = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const a = await startNode(1n);
    const b = await startNode(2n);
    const book = [{ id: 1n, address: a.gateway.address }, { id: 2n, address: b.gateway.address }];
    a.transport.setPeers(book);
    b.transport.setPeers(book);
    try {
        // Connect first, so the sends below go straight to an open socket (the coalesced path).
        a.transport.send(vote(1n, 2n, 1));
        await b.inbox.next((m) => m.term === 1);
        await waitUntil(() => a.transport.stats().peers.some((p) => p.connected), 'a connected');
        const sent: Message[] = [];
        for (let term = 2; term <= 40; term++) {
            const m = term % 10 === 0 ? { ...append(term, 1024 * 1024), from: 1n, to: 2n } : vote(1n, 2n, term);
            sent.push(m);
            a.transport.send(m);
        }
        await b.inbox.next((m) => m.term === 40, 10_000);
        assert.deepEqual(b.inbox.messages.slice(1), sent);

        // Sends, then close, in one turn: close() resolves, nothing throws, nothing is written later.
        for (let term = 41; term <= 60; term++) a.transport.send(vote(1n, 2n, term));
        const closing = a.transport.close();
        a.transport.send(vote(1n, 2n, 61));
        await withDeadline(closing, 5000, 'a closed');
        await withDeadline(a.transport.close(), 5000, 'a closed again');
        const late = b.inbox.messages.filter((m) => m.term > 40).map((m) => m.term);
        assert.deepEqual(late, Array.from({ length: late.length }, (_, i) => 41 + i), 'a prefix, in order');
    } finally {
        await a.transport.close();
        await b.transport.close();
        await a.gateway.close();
        await b.gateway.close();
    }
    await waitUntil(() => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
        <= handlesBefore, 'no TCP handle left');
});
