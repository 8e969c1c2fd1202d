// Goal: the transport's lifecycle is airtight (STYLE.md §7.5, dqlite-notes.md §F): close() is
// idempotent, destroys every socket and cancels every timer, nothing calls back after close, and
// repeated create/connect/close cycles leave no handle behind.
// Method: 200 cycles of two transports behind test gateways, each cycle closing in a different
// situation (connected, mid-dial, peer down with a redial pending, mid-snapshot); every callback
// checks that its transport is not closed; afterwards process.getActiveResourcesInfo() must show
// no more TCP handles or timers than before the cycles.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTransport } from '../../src/peer/transport.js';
import type { Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { Inbox, TestGateway, withDeadline } from './helpers/gateway.js';

function countResources(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
    return counts;
}

function vote(from: NodeId, to: NodeId, term: number): Message {
    return { type: 'requestVote', term, from, to, lastIndex: 1, lastTerm: 1, preVote: false, transfer: false };
}

const lateCallbacks: string[] = [];

function guardedTransport(id: NodeId, address: string, inbox: Inbox): PeerTransport {
    let transport: PeerTransport | undefined = undefined;
    const check = (what: string): void => {
        if (transport !== undefined && transport.state !== 'open') {
            lateCallbacks.push(`${what} on ${id} while ${transport.state}`);
        }
    };
    transport = new PeerTransport({
        id,
        address,
        onMessage: (m) => {
            check('onMessage');
            inbox.push(m);
        },
        onUnreachable: () => check('onUnreachable'),
        onSnapshot: () => {
            check('onSnapshot');
            return {
                write: () => check('sink.write'),
                finish: () => check('sink.finish'),
                // abort() is the one call allowed while closing (it is how close() ends a sink).
                abort: () => {
                    if (transport?.state === 'closed') lateCallbacks.push(`sink.abort on ${id} after close`);
                },
            };
        },
        limits: { backoffInitialMs: 5, backoffMaxMs: 20 },
    });
    return transport;
}

async function* endless(): AsyncGenerator<Uint8Array> {
    for (;;) yield new Uint8Array(32 * 1024);
}

async function cycle(n: number): Promise<void> {
    const ga = await TestGateway.listen(undefined);
    const gb = await TestGateway.listen(undefined);
    const ia = new Inbox();
    const ib = new Inbox();
    const a = guardedTransport(1n, ga.address, ia);
    const b = guardedTransport(2n, gb.address, ib);
    ga.target = a;
    gb.target = b;
    const book = [{ id: 1n, address: ga.address }, { id: 2n, address: gb.address }];
    a.setPeers(book);
    b.setPeers(book);
    const situation = n % 4;
    let snapshot: Promise<void> | undefined;
    if (situation === 0) {
        // Connected both ways.
        a.send(vote(1n, 2n, n));
        b.send(vote(2n, 1n, n));
        await ib.next();
        await ia.next();
    } else if (situation === 1) {
        // Close while the dial is still in progress.
        a.send(vote(1n, 2n, n));
    } else if (situation === 2) {
        // The peer is down: a redial timer is pending when we close.
        await b.close();
        await gb.close();
        a.send(vote(1n, 2n, n));
        await withDeadline(new Promise<void>((resolve) => {
            const poll = (): void => {
                if ((a.stats().peers.find((p) => p.id === 2n)?.dials ?? 0) >= 2) resolve();
                else setImmediate(poll);
            };
            poll();
        }), 5000, 'a redial');
    } else {
        // Mid-snapshot.
        a.send(vote(1n, 2n, n));
        await ib.next();
        snapshot = a.sendSnapshot({
            type: 'installSnapshot', term: 1, from: 1n, to: 2n,
            meta: { index: 1, term: 1, configurationIndex: 1, configuration: { servers: [] } },
        }, endless());
        snapshot.catch(() => undefined);
        await withDeadline(new Promise<void>((resolve) => {
            const poll = (): void => {
                if (b.stats().snapshotsReceiving > 0) resolve();
                else setImmediate(poll);
            };
            poll();
        }), 5000, 'the snapshot to start');
    }
    const first = a.close();
    assert.equal(a.close(), first, 'close() is memoised');
    await Promise.all([first, b.close()]);
    if (snapshot !== undefined) await assert.rejects(snapshot, { code: 'ERR_CLOSED' });
    // After close: public methods are inert or reject, nothing is accepted.
    a.send(vote(1n, 2n, 0));
    await assert.rejects(a.sendSnapshot({
        type: 'installSnapshot', term: 1, from: 1n, to: 2n,
        meta: { index: 1, term: 1, configurationIndex: 1, configuration: { servers: [] } },
    }, endless()), { code: 'ERR_CLOSED' });
    assert.equal(a.state, 'closed');
    await ga.close();
    if (situation !== 2) await gb.close();
}

test('200 create/connect/close cycles leave no handles and no late callbacks', async () => {
    const before = countResources();
    for (let n = 0; n < 200; n++) await cycle(n);
    // Give any straggler a few turns of the loop to show itself.
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(lateCallbacks, []);
    const after = countResources();
    for (const kind of ['TCPWRAP', 'TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
        assert.ok((after.get(kind) ?? 0) <= (before.get(kind) ?? 0),
            `${kind}: ${before.get(kind) ?? 0} before, ${after.get(kind) ?? 0} after (${[...after].join(', ')})`);
    }
});
