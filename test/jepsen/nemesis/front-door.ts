// The front door of one node in the nemesis harness: the address the cluster knows the node by.
//
// A dqlite-protocol node advertises ONE address, used both by clients and by the other nodes'
// raft transports, so a plain proxy at that address could only cut "everyone → node", not
// "node a → node b". The front door tells the two apart by the first bytes of the connection:
// every raft connection starts with the dqlite handshake (8 bytes) and a CONNECT request
// (type 11) carrying the dialling node's id and advertised address; a client's first request
// is anything else (LEADER, CLIENT, OPEN, ...). The front door reads that far, asks `route` which
// LinkProxy the connection belongs to (the per-pair link from the dialler, or the client link),
// connects to that LinkProxy, replays the bytes it read and then pipes both ways. Faults happen in
// the LinkProxy (test/jepsen/proxy.ts); the front door itself always forwards.
//
// Lifecycle (STYLE.md §7.5): the front door owns its server and every socket pair; close() is
// idempotent, destroys every socket and resolves once the server and every socket closed.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { Lifecycle } from '../../../src/lib/lifecycle.js';
import { listenLoopback, type Endpoint } from '../proxy.js';

const HANDSHAKE_BYTES = 8;
const HEADER_BYTES = 8;
const REQUEST_CONNECT = 11;
/** A CONNECT body larger than this is not a real one: route the connection as a client. */
const CONNECT_BODY_MAX = 4096;

export interface FrontDoorOptions {
    readonly name: string;
    /** Port to listen on (127.0.0.1); 0 picks one. */
    readonly port: number;
    /** Where a connection goes: `from` is the dialling node's advertised address, or undefined for a client. */
    readonly route: (from: string | undefined) => Endpoint;
}

/** What the first bytes say: undefined = need more bytes; null = client; a string = the peer's address. */
export function classifyPreamble(head: Buffer): string | null | undefined {
    if (head.length < HANDSHAKE_BYTES + HEADER_BYTES) return undefined;
    const words = head.readUInt32LE(HANDSHAKE_BYTES);
    const type = head.readUInt8(HANDSHAKE_BYTES + 4);
    if (type !== REQUEST_CONNECT || words * 8 > CONNECT_BODY_MAX || words < 2) return null;
    const bodyStart = HANDSHAKE_BYTES + HEADER_BYTES;
    if (head.length < bodyStart + words * 8) return undefined;
    const text = head.subarray(bodyStart + 8, bodyStart + words * 8);
    const nul = text.indexOf(0);
    return text.subarray(0, nul < 0 ? text.length : nul).toString('utf8');
}

export class FrontDoor {
    readonly name: string;
    private readonly lifecycle: Lifecycle;
    private readonly server: Server;
    private readonly sockets = new Set<Socket>();
    private readonly route: FrontDoorOptions['route'];
    private listenPort = 0;
    /** Connections routed, by kind (for reports). */
    readonly routed = { peer: 0, client: 0 };

    private constructor(options: FrontDoorOptions) {
        this.name = options.name;
        this.route = options.route;
        this.lifecycle = new Lifecycle(`front door ${options.name}`);
        this.server = createServer({ pauseOnConnect: false }, (socket) => this.onAccept(socket));
    }

    static async open(options: FrontDoorOptions): Promise<FrontDoor> {
        const door = new FrontDoor(options);
        door.lifecycle.moveTo('opening');
        door.listenPort = await listenLoopback(door.server, options.port);
        door.lifecycle.moveTo('open');
        return door;
    }

    get address(): string {
        return `127.0.0.1:${this.listenPort}`;
    }

    private track(socket: Socket): void {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
    }

    private onAccept(socket: Socket): void {
        this.track(socket);
        socket.setNoDelay(true);
        if (!this.lifecycle.isOpen) {
            socket.destroy();
            return;
        }
        let head = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
            head = Buffer.concat([head, chunk]);
            const from = classifyPreamble(head);
            if (from === undefined) return;
            socket.off('data', onData);
            socket.pause();
            this.forward(socket, head, from ?? undefined);
        };
        socket.on('data', onData);
        socket.on('error', () => socket.destroy());
    }

    private forward(socket: Socket, head: Buffer, from: string | undefined): void {
        if (!this.lifecycle.isOpen || socket.destroyed) {
            socket.destroy();
            return;
        }
        if (from === undefined) this.routed.client++;
        else this.routed.peer++;
        const target = this.route(from);
        const upstream = connect({ host: target.host, port: target.port });
        this.track(upstream);
        upstream.setNoDelay(true);
        const teardown = (): void => {
            socket.destroy();
            upstream.destroy();
        };
        upstream.on('error', teardown);
        upstream.on('close', teardown);
        socket.on('close', teardown);
        upstream.once('connect', () => {
            upstream.write(head);
            socket.pipe(upstream);
            upstream.pipe(socket);
            socket.resume();
        });
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
            const waits = [...this.sockets].map((s) => new Promise<void>((resolve) => {
                if (s.closed) resolve();
                else s.once('close', () => resolve());
            }));
            for (const s of [...this.sockets]) s.destroy();
            await Promise.all([closed, ...waits]);
        });
    }
}
