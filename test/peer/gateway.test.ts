// Goal: the real client gateway (src/server) and the peer transport work together on one
// listening address: a peer's dqlite handshake + CONNECT is handed off by the gateway to
// PeerTransport.accept(), in plain TCP and in mutual TLS — the hand-off path where dqlite
// crashed in 2024 (dqlite-notes.md §F).
// Method: two nodes, each a real Server with a stub Backend whose connect() calls accept();
// messages both ways and a snapshot; then close transports and servers and check no handle is
// left. The TLS material is test/peer/fixtures (self-signed, its own CA).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TlsOptions } from 'node:tls';
import { Server } from '../../src/server/server.js';
import type { Backend, PeerHandoff } from '../../src/server/backend.js';
import { PeerTransport } from '../../src/peer/transport.js';
import type { Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { Inbox } from './helpers/gateway.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', '..', '..', 'test', 'peer', 'fixtures');
const cert = readFileSync(join(fixtures, 'peer-cert.pem'));
const key = readFileSync(join(fixtures, 'peer-key.pem'));

/** A Backend that only knows CONNECT: everything else is refused. */
function peerOnlyBackend(accept: (handoff: PeerHandoff) => boolean): Backend {
    const refuse = (): Promise<never> => Promise.reject(new Error('not a client backend'));
    return {
        leader: refuse, cluster: refuse, describe: refuse, setWeight: refuse, add: refuse, assign: refuse,
        remove: refuse, transfer: refuse, dump: refuse, open: refuse,
        connect: accept,
    };
}

interface GatewayNode {
    id: NodeId;
    server: Server;
    transport: PeerTransport;
    inbox: Inbox;
    received: number;
}

async function startGatewayNode(id: NodeId, tls: boolean): Promise<GatewayNode> {
    let transport: PeerTransport | undefined;
    const serverTls: TlsOptions | undefined = tls
        ? { cert, key, ca: cert, requestCert: true, rejectUnauthorized: true }
        : undefined;
    const server = new Server({
        backend: peerOnlyBackend((h) => {
            return transport?.accept(h.socket, { id: h.id, address: h.address, leftover: h.head }) ?? false;
        }),
        address: '127.0.0.1:0',
        ...(serverTls === undefined ? {} : { tls: serverTls }),
    });
    await server.start();
    const node: GatewayNode = {
        id, server, transport: undefined as unknown as PeerTransport, inbox: new Inbox(), received: 0,
    };
    transport = new PeerTransport({
        id,
        address: server.address,
        onMessage: node.inbox.push,
        onSnapshot: () => ({
            write: (chunk) => void (node.received += chunk.length),
            finish: () => undefined,
            abort: () => undefined,
        }),
        ...(tls ? { tls: { cert, key, ca: cert } } : {}),
    });
    node.transport = transport;
    return node;
}

function vote(from: NodeId, to: NodeId, term: number): Message {
    return { type: 'requestVote', term, from, to, lastIndex: 1, lastTerm: 1, preVote: false, transfer: false };
}

async function* bytes(total: number): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < total; at += 100_000) yield new Uint8Array(Math.min(100_000, total - at)).fill(at % 251);
}

for (const tls of [false, true]) {
    test(`the real gateway hands peers to the transport (${tls ? 'mutual TLS' : 'plain TCP'})`, async () => {
        const before = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
        const a = await startGatewayNode(1n, tls);
        const b = await startGatewayNode(2n, tls);
        try {
            const book = [{ id: 1n, address: a.server.address }, { id: 2n, address: b.server.address }];
            a.transport.setPeers(book);
            b.transport.setPeers(book);
            for (let term = 1; term <= 20; term++) a.transport.send(vote(1n, 2n, term));
            await b.inbox.next((m) => m.term === 20);
            assert.deepEqual(b.inbox.messages.map((m) => m.term), Array.from({ length: 20 }, (_, i) => i + 1));
            b.transport.send(vote(2n, 1n, 99));
            assert.equal((await a.inbox.next()).term, 99);
            await a.transport.sendSnapshot({
                type: 'installSnapshot', term: 3, from: 1n, to: 2n,
                meta: { index: 7, term: 3, configurationIndex: 1, configuration: { servers: [] } },
            }, bytes(4_000_000));
            await b.inbox.next((m) => m.type === 'installSnapshot');
            assert.equal(b.received, 4_000_000);
            // The gateway no longer counts handed-off sockets as its sessions.
            assert.equal(a.server.connectionCount + b.server.connectionCount, 0);
        } finally {
            await a.transport.close();
            await b.transport.close();
            await a.server.close();
            await b.server.close();
        }
        for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
        const after = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
        assert.ok(after <= before, `TCP handles: ${before} before, ${after} after`);
    });
}
