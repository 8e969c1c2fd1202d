// Test stand-ins for what surrounds the peer transport: a tiny gateway (a node:net listener that
// reads the dqlite handshake and the CONNECT request, then hands the socket to a PeerTransport,
// as src/server does), an inbox that waits for messages with a deadline, and raw peers that
// write arbitrary bytes after a valid preamble.

import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import { ManualClock, systemClock } from '../../../src/lib/clock.js';
import type { Clock, Timer } from '../../../src/lib/clock.js';
import type { PeerTransport } from '../../../src/peer/transport.js';
import type { Message } from '../../../src/raft/messages.js';
import type { NodeId } from '../../../src/raft/types.js';

/** Fails after `ms` unless `promise` settles first (the deadline every test wait needs). */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
        const timer = systemClock.setTimer(ms, () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)));
        promise.then(
            (v) => {
                timer.cancel();
                resolve(v);
            },
            (e: unknown) => {
                timer.cancel();
                reject(e);
            },
        );
    });
}

/** Parses the handshake + CONNECT; returns undefined until complete, null when invalid. */
function parsePreamble(buf: Buffer): { id: NodeId; address: string; rest: Buffer } | undefined | null {
    if (buf.length < 16) return undefined;
    if (buf.readBigUInt64LE(0) !== 1n) return null;
    const words = buf.readUInt32LE(8);
    if (buf.readUInt8(12) !== 11 || words < 2) return null;
    const end = 16 + words * 8;
    if (buf.length < end) return undefined;
    const id = buf.readBigUInt64LE(16);
    const nul = buf.indexOf(0, 24);
    if (nul < 0 || nul >= end) return null;
    return { id, address: buf.subarray(24, nul).toString('utf8'), rest: buf.subarray(end) };
}

export class TestGateway {
    /** The transport sockets are handed to (may be swapped, e.g. across a restart). */
    target: PeerTransport | undefined;
    handoffs = 0;
    private readonly waiting = new Set<Socket>();

    private constructor(private readonly server: Server) {}

    static async listen(target: PeerTransport | undefined, port = 0): Promise<TestGateway> {
        let gateway: TestGateway | undefined;
        const server = createServer({ allowHalfOpen: true }, (socket) => gateway?.onConnection(socket));
        gateway = new TestGateway(server);
        gateway.target = target;
        server.listen(port, '127.0.0.1');
        await once(server, 'listening');
        return gateway;
    }

    get port(): number {
        const a = this.server.address();
        if (a === null || typeof a === 'string') throw new Error('not listening');
        return a.port;
    }

    get address(): string {
        return `127.0.0.1:${this.port}`;
    }

    private onConnection(socket: Socket): void {
        this.waiting.add(socket);
        let buffered = Buffer.alloc(0);
        const onError = (): void => undefined;
        const onClose = (): void => void this.waiting.delete(socket);
        const onData = (chunk: Buffer): void => {
            buffered = Buffer.concat([buffered, chunk]);
            const parsed = parsePreamble(buffered);
            if (parsed === undefined) return;
            socket.pause();
            socket.off('data', onData);
            socket.off('error', onError);
            socket.off('close', onClose);
            this.waiting.delete(socket);
            if (parsed === null) {
                socket.destroy();
                return;
            }
            this.handoffs++;
            const info = { id: parsed.id, address: parsed.address, leftover: parsed.rest };
            const accepted = this.target?.accept(socket, info);
            if (accepted !== true) socket.destroy();
        };
        socket.on('data', onData);
        socket.on('error', onError);
        socket.on('close', onClose);
    }

    /** Stops listening and closes connections not yet handed off (close the transport first). */
    async close(): Promise<void> {
        for (const s of this.waiting) s.destroy();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
}

/** Collects delivered messages; next() waits for one matching a predicate. */
export class Inbox {
    readonly messages: Message[] = [];
    private waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
    private taken = 0;

    readonly push = (m: Message): void => {
        this.messages.push(m);
        this.waiters = this.waiters.filter((w) => {
            if (!w.match(m)) return true;
            w.resolve(m);
            return false;
        });
    };

    /** The first message (delivered at or after the last next() call's match) for which `match` holds. */
    next(match: (m: Message) => boolean = () => true, ms = 5000): Promise<Message> {
        for (let i = this.taken; i < this.messages.length; i++) {
            const m = this.messages[i] as Message;
            if (match(m)) {
                this.taken = i + 1;
                return Promise.resolve(m);
            }
        }
        return withDeadline(new Promise<Message>((resolve) => this.waiters.push({
            match,
            resolve: (m) => {
                this.taken = this.messages.length;
                resolve(m);
            },
        })), ms, 'a message');
    }
}

/** A raw client: the valid preamble, then whatever bytes the test writes. */
export async function rawPeer(port: number, id: bigint, address: string, first?: Uint8Array): Promise<Socket> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const body = Buffer.alloc(8 + Math.ceil((Buffer.byteLength(address) + 1) / 8) * 8);
    body.writeBigUInt64LE(id, 0);
    body.write(address, 8, 'utf8');
    const header = Buffer.alloc(16);
    header.writeBigUInt64LE(1n, 0);
    header.writeUInt32LE(body.length / 8, 8);
    header.writeUInt8(11, 12);
    // `first` goes in the same write, so the gateway reads it together with CONNECT (leftover).
    socket.write(Buffer.concat([header, body, first ?? Buffer.alloc(0)]));
    return socket;
}

/** Waits until `condition()` holds, re-checking every few milliseconds, failing after `ms`. */
export function waitUntil(condition: () => boolean, what: string, ms = 5000): Promise<void> {
    return withDeadline(new Promise<void>((resolve) => {
        const check = (): void => {
            if (condition()) resolve();
            else systemClock.setTimer(2, check);
        };
        check();
    }), ms, what);
}

/** A clock that records every delay asked for, on top of a ManualClock. */
export class RecordingClock implements Clock {
    readonly delays: number[] = [];
    readonly manual = new ManualClock();
    now(): number {
        return this.manual.now();
    }
    setTimer(delayMs: number, fn: () => void): Timer {
        this.delays.push(delayMs);
        return this.manual.setTimer(delayMs, fn);
    }
}
