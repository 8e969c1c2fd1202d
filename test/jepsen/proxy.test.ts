// Goal: the fault proxy does what each mode promises (pass, black-hole, reset, delay with jitter,
// one-way), the partition helpers cut exactly the links they name, and close() leaves no handle
// behind (STYLE.md §7.5). Method: a small echo server on 127.0.0.1 behind LinkProxy/ProxyNetwork;
// waits poll a condition on setImmediate with an iteration bound (never sleep); the delay test
// runs on a ManualClock so "not yet delivered" is a fact, not a race; "nothing arrived" in the
// black-hole and one-way tests is checked after a round trip on a healthy link to the same server
// has completed, and then positively once the link heals. Jitter uses a printed seed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { ManualClock } from '../../src/lib/clock.js';
import { SeededRandom } from '../../src/lib/random.js';
import { BLACK_HOLE, LinkProxy, PASS, ProxyNetwork, RESET, type Endpoint } from './proxy.js';

async function until(condition: () => boolean, what: string, spins = 2_000_000): Promise<void> {
    for (let i = 0; !condition(); i++) {
        if (i >= spins) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
    }
}

interface Echo {
    readonly endpoint: Endpoint;
    /** Bytes received per accepted connection, in accept order. */
    readonly received: number[];
    close(): Promise<void>;
}

async function startEcho(): Promise<Echo> {
    const sockets = new Set<Socket>();
    const received: number[] = [];
    const server = createServer({ allowHalfOpen: true }, (socket) => {
        const index = received.push(0) - 1;
        sockets.add(socket);
        socket.on('data', (chunk: Buffer) => {
            received[index] = (received[index] as number) + chunk.length;
            socket.write(chunk);
        });
        socket.on('end', () => socket.end());
        socket.on('error', () => {});
        socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        endpoint: { host: '127.0.0.1', port },
        received,
        close: async () => {
            const closed = new Promise<void>((resolve) => server.close(() => resolve()));
            for (const s of sockets) s.destroy();
            await closed;
        },
    };
}

interface Client {
    readonly socket: Socket;
    data: Buffer;
    closed: boolean;
    error: (Error & { code?: string }) | undefined;
    connected: boolean;
}

function openClient(at: Endpoint): Client {
    const socket = connect({ host: at.host, port: at.port });
    const client: Client = { socket, data: Buffer.alloc(0), closed: false, error: undefined, connected: false };
    socket.on('connect', () => (client.connected = true));
    socket.on('data', (chunk: Buffer) => (client.data = Buffer.concat([client.data, chunk])));
    socket.on('error', (e) => (client.error = e));
    socket.on('close', () => (client.closed = true));
    return client;
}

async function closeClient(c: Client): Promise<void> {
    c.socket.destroy();
    await until(() => c.closed, 'client close');
}

/** The handles a proxy could leak: servers, sockets, timers. */
function resources(): string[] {
    return process.getActiveResourcesInfo().filter((r) => /^TCP|Timeout|Immediate/.test(r)).sort();
}

/**
 * Waits (bounded) until no server, socket or timer handle is left: handles close a turn or two
 * after their close callbacks. Each test that checks this starts from the same empty state.
 */
async function noHandlesLeft(): Promise<void> {
    await until(() => resources().length === 0, `no handles, have ${JSON.stringify(resources())}`, 10_000);
}

test('pass forwards both directions, with backpressure, and half-close', async () => {
    await noHandlesLeft();
    const echo = await startEcho();
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed: 1 });
    const c = openClient(link.address);
    const payload = Buffer.alloc(4 << 20, 7);
    for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
    c.socket.end(payload);
    await until(() => c.closed, 'echo of 4 MiB and the end of the stream');
    assert.equal(c.error, undefined);
    assert.ok(c.data.equals(payload));
    assert.equal(link.acceptedCount, 1);
    await until(() => link.connectionCount === 0, 'proxy connection teardown');
    await link.close();
    await echo.close();
    await noHandlesLeft();
});

test('black-hole accepts and holds; healing delivers what was held', async () => {
    const echo = await startEcho();
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed: 1 });
    const control = await LinkProxy.open({ name: 'control', target: echo.endpoint, seed: 1 });
    const old = openClient(link.address);
    old.socket.write('ping');
    await until(() => old.data.toString() === 'ping', 'first echo');
    link.setMode(BLACK_HOLE);
    old.socket.write('lost?');
    const parked = openClient(link.address);
    parked.socket.write('hello');
    await until(() => parked.connected, 'the black hole accepts');
    // A round trip through another link to the same server, then check nothing got through.
    const probe = openClient(control.address);
    probe.socket.write('x');
    await until(() => probe.data.length === 1, 'control echo');
    assert.equal(old.data.toString(), 'ping');
    assert.equal(parked.data.length, 0);
    assert.deepEqual(echo.received, [4, 1], 'the echo server saw neither the held bytes nor the parked connection');
    assert.equal(old.closed || parked.closed, false);
    link.setMode(PASS);
    await until(() => old.data.toString() === 'pinglost?', 'held bytes after healing');
    await until(() => parked.data.toString() === 'hello', 'parked connection after healing');
    await Promise.all([closeClient(old), closeClient(parked), closeClient(probe)]);
    await Promise.all([link.close(), control.close()]);
    await echo.close();
});

test('reset destroys existing connections and refuses new ones', async () => {
    const echo = await startEcho();
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed: 1 });
    const c = openClient(link.address);
    c.socket.write('ping');
    await until(() => c.data.length === 4, 'echo');
    link.setMode(RESET);
    await until(() => c.closed, 'reset of the open connection');
    assert.equal(c.error?.code, 'ECONNRESET');
    const d = openClient(link.address);
    await until(() => d.closed, 'reset of a new connection');
    assert.equal(d.data.length, 0);
    await until(() => link.connectionCount === 0, 'teardown');
    link.setMode(PASS);
    const e = openClient(link.address);
    e.socket.write('again');
    await until(() => e.data.toString() === 'again', 'echo after reset ends');
    await closeClient(e);
    await link.close();
    await echo.close();
});

test('delay holds bytes for ms + jitter on the link clock and keeps their order', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    console.log(`# delay: seed ${seed}`);
    const clock = new ManualClock(0);
    const echo = await startEcho();
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed, clock });
    const c = openClient(link.address);
    c.socket.write('warm');
    await until(() => c.data.length === 4, 'echo before the delay');
    link.setMode({ kind: 'delay', ms: 100, jitterMs: 50 });
    const rng = new SeededRandom(seed);
    const parts: string[] = [];
    for (let i = 0; i < 20; i++) {
        const part = `<${i}:${'z'.repeat(rng.int(50))}>`;
        parts.push(part);
        c.socket.write(part);
    }
    const total = parts.join('').length;
    await until(() => link.pendingBytes === total, 'the proxy holding every byte');
    assert.equal(echo.received[0], 4, 'nothing reached the server before the clock moved');
    clock.advance(99);
    assert.equal(link.pendingBytes, total, 'nothing is due before the minimum delay');
    clock.advance(51);
    await until(() => (echo.received[0] as number) === 4 + total, 'delivery to the server');
    // The echo comes back through the same delay.
    await until(() => link.pendingBytes === total, 'the reply held by the proxy');
    clock.advance(150);
    await until(() => c.data.length === 4 + total, 'the delayed echo');
    assert.equal(c.data.toString(), `warm${parts.join('')}`);
    await closeClient(c);
    await link.close();
    await echo.close();
});

test('one-way keeps one direction and drops the other', async () => {
    const echo = await startEcho();
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed: 1 });
    const c = openClient(link.address);
    c.socket.write('ab');
    await until(() => c.data.length === 2, 'echo');
    link.setMode({ kind: 'one-way', keep: 'forward' });
    c.socket.write('cd');
    await until(() => echo.received[0] === 4, 'forward bytes still arrive');
    await until(() => link.droppedBytes === 2, 'the echo of cd dropped');
    link.setMode({ kind: 'one-way', keep: 'backward' });
    c.socket.write('ef');
    await until(() => link.droppedBytes === 4, 'ef dropped');
    link.setMode(PASS);
    c.socket.write('gh');
    await until(() => echo.received[0] === 6, 'bytes after healing');
    // 'cd' was echoed while replies were dropped; 'ef' never reached the server.
    await until(() => c.data.toString() === 'abgh', 'only the unaffected echoes');
    await closeClient(c);
    await link.close();
    await echo.close();
});

test('partition helpers set exactly the links they name', async () => {
    const echoes = await Promise.all([startEcho(), startEcho(), startEcho(), startEcho(), startEcho()]);
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const nodes = ids.map((id, i) => ({ id, target: (echoes[i] as Echo).endpoint }));
    const network = await ProxyNetwork.open({ nodes, seed: 3 });
    const cut = (): string[] => network.allLinks().filter((l) => l.mode.kind !== 'pass').map((l) => l.name).sort();
    assert.equal(network.allLinks().length, 5 * 4 + 5);

    network.isolate('n1');
    assert.deepEqual(cut(), ['n1->n2', 'n1->n3', 'n1->n4', 'n1->n5', 'n2->n1', 'n3->n1', 'n4->n1', 'n5->n1']);
    network.heal();
    network.isolate('n2', { clients: true, mode: RESET });
    assert.ok(cut().includes('client->n2'));
    assert.equal(network.link('n1', 'n2').mode.kind, 'reset');
    network.heal();
    assert.deepEqual(cut(), []);

    const [majority, minority] = network.majorityMinority(new SeededRandom(3));
    assert.equal(majority.length, 3);
    assert.equal(minority.length, 2);
    assert.equal(cut().length, 2 * 3 * 2);
    for (const a of majority) for (const b of minority) assert.equal(network.link(a, b).mode.kind, 'black-hole');
    network.heal();

    network.bridge('n3', ['n1', 'n2'], ['n4', 'n5']);
    assert.deepEqual(cut(), ['n1->n4', 'n1->n5', 'n2->n4', 'n2->n5', 'n4->n1', 'n4->n2', 'n5->n1', 'n5->n2']);
    network.heal();
    network.oneWay('n1', 'n2');
    assert.deepEqual(cut(), ['n1->n2']);

    // Traffic: n2 still reaches n1 while n1 cannot reach n2.
    const ok = openClient(network.addressFor('n2', 'n1'));
    ok.socket.write('hi');
    await until(() => ok.data.length === 2, 'n2 -> n1 echo');
    const blocked = openClient(network.addressFor('n1', 'n2'));
    blocked.socket.write('hi');
    const probe = openClient(network.clientAddress('n2'));
    probe.socket.write('p');
    await until(() => probe.data.length === 1, 'client probe of n2');
    assert.equal(blocked.data.length, 0);
    assert.deepEqual(echoes[1]?.received, [1], 'n2 saw only the probe');
    await Promise.all([closeClient(ok), closeClient(probe)]);
    // Closing the network with a parked connection still open must tear it down.
    await network.close();
    await until(() => blocked.closed, 'parked connection closed by the proxy');
    await Promise.all(echoes.map((e) => e.close()));
});

test('close is idempotent, tears down every connection and leaves no handle', async () => {
    await noHandlesLeft();
    const echo = await startEcho();
    const clock = new ManualClock(0);
    const link = await LinkProxy.open({ name: 'a->b', target: echo.endpoint, seed: 1 });
    const delayed = await LinkProxy.open({ name: 'c->b', target: echo.endpoint, seed: 1, clock });
    const clients = [openClient(link.address), openClient(link.address)];
    for (const c of clients) c.socket.write('x');
    await until(() => clients.every((c) => c.data.length === 1), 'echoes');
    link.setMode(BLACK_HOLE);
    clients.push(openClient(link.address));
    delayed.setMode({ kind: 'delay', ms: 1000, jitterMs: 0 });
    const slow = openClient(delayed.address);
    slow.socket.write('queued');
    const parked = clients[2] as Client;
    await until(() => delayed.pendingBytes === 6 && parked.connected, 'a parked and a delayed connection');
    const first = link.close();
    assert.equal(link.close(), first, 'a second close returns the same promise');
    await Promise.all([first, delayed.close()]);
    await until(() => clients.every((c) => c.closed) && slow.closed, 'every client sees its connection closed');
    assert.equal(link.connectionCount, 0);
    assert.throws(() => link.setMode(PASS), { code: 'ERR_CLOSED' });
    await echo.close();
    await noHandlesLeft();
});
