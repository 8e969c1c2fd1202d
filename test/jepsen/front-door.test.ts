// Goal: the nemesis front door (nemesis/front-door.ts) tells raft peers from clients by their
// first bytes and puts each connection on the link the route names, replaying what it read.
// Method: classifyPreamble on the real encoders (src/peer's CONNECT preamble, src/wire's handshake
// and requests), fed whole and byte by byte; then a FrontDoor on 127.0.0.1 in front of two echo
// servers ("peer" and "client" routes): a peer preamble and a client request each reach their
// server intact, and close() leaves no handle. Waits poll on setImmediate with a bound; no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { encodeConnectPreamble } from '../../src/peer/codec.js';
import { encodeHandshake, encodeRequest } from '../../src/wire/index.js';
import { classifyPreamble, FrontDoor } from './nemesis/front-door.js';

async function until(condition: () => boolean, what: string, spins = 2_000_000): Promise<void> {
    for (let i = 0; !condition(); i++) {
        if (i >= spins) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
    }
}

test('classifyPreamble: CONNECT gives the dialler\'s address, anything else is a client', () => {
    const peer = encodeConnectPreamble(42n, '127.0.0.1:9002');
    assert.equal(classifyPreamble(peer), '127.0.0.1:9002');
    for (let n = 0; n < peer.length; n++) assert.equal(classifyPreamble(peer.subarray(0, n)), undefined, `prefix ${n}`);
    const client = Buffer.concat([encodeHandshake(), encodeRequest({ kind: 'leader' })]);
    assert.equal(classifyPreamble(client), null);
    assert.equal(classifyPreamble(client.subarray(0, 15)), undefined);
});

interface Sink {
    readonly server: Server;
    readonly port: number;
    readonly bytes: Buffer[];
    readonly sockets: Set<Socket>;
}

async function sink(): Promise<Sink> {
    const bytes: Buffer[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('data', (chunk: Buffer) => bytes.push(chunk));
    });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
    return { server, port: (server.address() as AddressInfo).port, bytes, sockets };
}

test('FrontDoor: routes a peer and a client to their links with their first bytes intact', async () => {
    const peerSink = await sink();
    const clientSink = await sink();
    const routes: (string | undefined)[] = [];
    const door = await FrontDoor.open({
        name: 'n1', port: 0,
        route: (from) => {
            routes.push(from);
            return { host: '127.0.0.1', port: from === undefined ? clientSink.port : peerSink.port };
        },
    });
    const [host, port] = [door.address.split(':')[0] as string, Number(door.address.split(':')[1])];
    const peerBytes = Buffer.concat([encodeConnectPreamble(7n, '127.0.0.1:1234'), Buffer.from('raft!')]);
    const clientBytes = Buffer.concat([encodeHandshake(), encodeRequest({ kind: 'leader' })]);
    const a = connect({ host, port });
    const b = connect({ host, port });
    // The peer's bytes one at a time: the door must wait for the whole preamble.
    for (const byte of peerBytes) a.write(Buffer.from([byte]));
    b.write(clientBytes);
    const total = (s: Sink): number => s.bytes.reduce((n, c) => n + c.length, 0);
    await until(() => total(peerSink) === peerBytes.length && total(clientSink) === clientBytes.length, 'delivery');
    assert.deepEqual(Buffer.concat(peerSink.bytes), peerBytes);
    assert.deepEqual(Buffer.concat(clientSink.bytes), clientBytes);
    assert.deepEqual(routes.sort(), ['127.0.0.1:1234', undefined].sort());
    assert.deepEqual(door.routed, { peer: 1, client: 1 });
    await door.close();
    await door.close();
    await until(() => peerSink.sockets.size === 0 && clientSink.sockets.size === 0, 'upstreams closed');
    a.destroy();
    b.destroy();
    const closeServer = (s: Sink): Promise<void> => new Promise<void>((resolve) => s.server.close(() => resolve()));
    await Promise.all([peerSink, clientSink].map(closeServer));
});
