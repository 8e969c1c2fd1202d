// A scripted dqlite node for deterministic client tests: a TCP listener on 127.0.0.1 that reads
// the handshake and requests with src/wire and answers each request with whatever the test's
// handler returns (responses, raw bytes, or "close the connection"). It records every request it
// decoded, per connection, so tests can assert what the client sent and how often.

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { FrameSplitter, decodeRequest, encodeResponse } from '../../../src/wire/index.js';
import type { Request, Response } from '../../../src/wire/index.js';

export type Answer = Response | Buffer | 'close' | 'silence';

export interface ScriptedConnection {
    readonly id: number;
    readonly socket: Socket;
    readonly requests: Request[];
    closed: boolean;
}

export type Handler = (request: Request, connection: ScriptedConnection, node: ScriptedNode) => Answer | Answer[];

export class ScriptedNode {
    address = '';
    readonly connections: ScriptedConnection[] = [];
    private server: Server | undefined;
    private nextId = 0;

    constructor(public handler: Handler) {}

    get requests(): Request[] {
        return this.connections.flatMap((c) => c.requests);
    }

    count(kind: Request['kind']): number {
        return this.requests.filter((r) => r.kind === kind).length;
    }

    async listen(): Promise<void> {
        this.server = createServer((socket) => this.accept(socket));
        await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
        const address = this.server.address();
        this.address = typeof address === 'object' && address !== null ? `127.0.0.1:${address.port}` : '';
    }

    async close(): Promise<void> {
        for (const c of this.connections) c.socket.destroy();
        const server = this.server;
        if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    /** Resolves once `predicate` holds, checking after every request and close (bounded by the test's timeout). */
    waitFor(predicate: () => boolean): Promise<void> {
        return new Promise((resolve) => {
            const check = (): void => {
                if (predicate()) resolve();
                else this.waiters.push(check);
            };
            check();
        });
    }

    private waiters: (() => void)[] = [];

    private notify(): void {
        const waiters = this.waiters.splice(0);
        for (const w of waiters) w();
    }

    private accept(socket: Socket): void {
        const connection: ScriptedConnection = { id: this.nextId++, socket, requests: [], closed: false };
        this.connections.push(connection);
        const splitter = new FrameSplitter({ handshake: true });
        let handshaken = false;
        socket.on('data', (chunk: Buffer) => {
            splitter.push(chunk);
            if (!handshaken) {
                if (splitter.handshake() === undefined) return;
                handshaken = true;
            }
            for (let frame = splitter.next(); frame !== undefined; frame = splitter.next()) {
                const request = decodeRequest(frame);
                connection.requests.push(request);
                const answers = this.handler(request, connection, this);
                for (const answer of Array.isArray(answers) ? answers : [answers]) {
                    if (answer === 'close') {
                        socket.destroy();
                        break;
                    }
                    if (answer === 'silence') continue;
                    socket.write(Buffer.isBuffer(answer) ? answer : encodeResponse(answer));
                }
                this.notify();
            }
        });
        socket.on('error', () => undefined);
        socket.on('close', () => {
            connection.closed = true;
            this.notify();
        });
    }
}

/** The usual answers of a leader at `address` for the session requests. */
export function leaderAnswers(node: ScriptedNode, request: Request): Answer | undefined {
    switch (request.kind) {
        case 'leader': return { kind: 'server', id: 1n, address: node.address };
        case 'client': return { kind: 'welcome', heartbeatTimeoutMs: 15000 };
        case 'open': return { kind: 'db', id: 0 };
        case 'interrupt': return { kind: 'empty' };
        case 'finalize': return { kind: 'empty' };
        default: return undefined;
    }
}

export const OK_RESULT: Response = { kind: 'result', lastInsertId: 0n, rowsAffected: 0n };
