// Goal: under a random mix of traffic, restarts, address-book changes, snapshots and garbage
// connections, the transport never throws, never delivers a message that was not sent to that
// node, never calls back after its close, settles every snapshot promise, recovers once the
// cluster is healed, and leaves no handle behind.
// Method: three nodes behind TestGateways; a SeededRandom draws 150 operations per seed,
// interleaved with turns of the event loop; then a heal phase (every node up, full address book)
// must deliver a message on every ordered pair. Replay with SEED=<n> (the seed is printed).

import { test } from 'node:test';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { PeerTransport } from '../../src/peer/transport.js';
import type { Message } from '../../src/raft/messages.js';
import type { NodeId } from '../../src/raft/types.js';
import { Inbox, rawPeer, TestGateway, withDeadline } from './helpers/gateway.js';

const IDS = [1n, 2n, 3n] as const;

interface ChaosNode {
    id: NodeId;
    gateway: TestGateway;
    transport: PeerTransport;
    inbox: Inbox;
}

function tick(): Promise<void> {
    return new Promise<void>((resolve) => setImmediate(resolve));
}

async function runSeed(seed: number): Promise<void> {
    const random = new SeededRandom(seed);
    const violations: string[] = [];
    const sent = new Map<number, { from: NodeId; to: NodeId }>();
    let nextTerm = 1;
    const snapshots: Promise<unknown>[] = [];
    const raws: Promise<unknown>[] = [];

    const makeTransport = (node: ChaosNode): PeerTransport => {
        let self: PeerTransport | undefined = undefined;
        const guard = (what: string): void => {
            if (self !== undefined && self.state !== 'open') {
                violations.push(`${what} on ${node.id} while ${self.state}`);
            }
        };
        self = new PeerTransport({
            id: node.id,
            address: node.gateway.address,
            onMessage: (m) => {
                guard('onMessage');
                if (m.to !== node.id) violations.push(`message for ${m.to} delivered to ${node.id}`);
                const origin = sent.get(m.term);
                const genuine = origin !== undefined && origin.from === m.from && origin.to === m.to;
                if (m.type !== 'installSnapshot' && !genuine) {
                    violations.push(`message term ${m.term} from ${m.from} was never sent to ${m.to}`);
                }
                node.inbox.push(m);
            },
            onUnreachable: () => guard('onUnreachable'),
            onSnapshot: () => {
                guard('onSnapshot');
                return {
                    write: () => guard('sink.write'),
                    finish: () => guard('sink.finish'),
                    abort: () => {
                        if (self?.state === 'closed') violations.push(`sink.abort on ${node.id} after close`);
                    },
                };
            },
            limits: { backoffInitialMs: 2, backoffMaxMs: 20, queueMessagesMax: 64, snapshotChunkBytes: 32 * 1024 },
        });
        node.gateway.target = self;
        return self;
    };

    const nodes: ChaosNode[] = [];
    for (const id of IDS) {
        const gateway = await TestGateway.listen(undefined);
        const node = { id, gateway, transport: undefined as unknown as PeerTransport, inbox: new Inbox() };
        node.transport = makeTransport(node);
        nodes.push(node);
    }
    const fullBook = (): { id: NodeId; address: string }[] =>
        nodes.map((n) => ({ id: n.id, address: n.gateway.address }));
    for (const n of nodes) n.transport.setPeers(fullBook());

    const message = (from: NodeId, to: NodeId): Message => {
        const term = nextTerm++;
        sent.set(term, { from, to });
        if (random.chance(0.5)) return { type: 'timeoutNow', term, from, to };
        return {
            type: 'appendEntries', term, from, to, prevIndex: 0, prevTerm: 0, commit: 0, readRound: 0,
            entries: [{ term, index: 1, type: 1, data: new Uint8Array(random.int(200_000)) }],
        };
    };
    async function* data(total: number): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < total; at += 50_000) {
            yield new Uint8Array(Math.min(50_000, total - at));
            if (random.chance(0.1)) await tick();
        }
    }

    try {
        for (let step = 0; step < 150; step++) {
            const node = random.pick(nodes);
            const other = random.pick(nodes.filter((n) => n !== node));
            const op = random.int(100);
            if (op < 55) {
                node.transport.send(message(node.id, other.id));
            } else if (op < 65) {
                const old = node.transport;
                const closing = old.close();
                if (random.chance(0.5)) await closing;
                else void closing;
                node.transport = makeTransport(node);
                node.transport.setPeers(fullBook());
            } else if (op < 75) {
                const book = fullBook().filter(() => random.chance(0.6));
                if (random.chance(0.3)) book.push({ id: other.id, address: '127.0.0.1:1' });
                node.transport.setPeers(book);
            } else if (op < 80) {
                node.transport.setPeers(fullBook());
            } else if (op < 88) {
                const term = nextTerm++;
                snapshots.push(node.transport.sendSnapshot({
                    type: 'installSnapshot', term, from: node.id, to: other.id,
                    meta: { index: 1, term: 1, configurationIndex: 1, configuration: { servers: [] } },
                }, data(random.int(1_000_000))).catch(() => undefined));
            } else if (op < 92) {
                const raw = await rawPeer(node.gateway.port, other.id, other.gateway.address);
                // Read (and drop) what comes back: a half-closed socket whose readable side is never
                // consumed never sees the node's end of the connection, so it never emits 'close'
                // (seed 294445103 waited forever on a raw that end()ed while the node had closed it).
                raw.resume();
                raws.push(raw.closed ? Promise.resolve() : once(raw, 'close'));
                const junk = new Uint8Array(random.int(64));
                for (let i = 0; i < junk.length; i++) junk[i] = random.int(256);
                raw.write(junk);
                if (random.chance(0.5)) raw.destroy();
                else raw.end();
            } else {
                for (let i = random.int(20); i > 0; i--) await tick();
            }
            if (random.chance(0.3)) await tick();
        }
        // Heal: every node open with the full address book; every ordered pair must deliver. A
        // message written just before its connection dies is lost (raft resends; so do we).
        for (const n of nodes) n.transport.setPeers(fullBook());
        for (const from of nodes) {
            for (const to of nodes) {
                if (from === to) continue;
                let delivered = false;
                for (let attempt = 0; attempt < 20 && !delivered; attempt++) {
                    const m = message(from.id, to.id);
                    from.transport.send(m);
                    delivered = await to.inbox.next((x) => x.term === m.term, 500).then(() => true, () => false);
                }
                assert.ok(delivered, `seed ${seed}: no message from ${from.id} reached ${to.id} after healing`);
            }
        }
    } finally {
        for (const n of nodes) await n.transport.close();
        for (const n of nodes) await n.gateway.close();
    }
    await withDeadline(Promise.all(snapshots), 10_000, 'every snapshot promise to settle');
    await withDeadline(Promise.all(raws), 10_000, 'the raw test sockets to close');
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(violations, [], `seed ${seed}`);
}

test('seeded chaos: no crash, no misdelivery, no late callback, recovery after heal', async () => {
    const first = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : Math.floor(Math.random() * 2 ** 31);
    const seeds = process.env['SEED'] !== undefined ? [first] : [first, first + 1, first + 2];
    const before = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP') || r === 'Timeout').length;
    for (const seed of seeds) {
        console.log(`peer chaos seed: ${seed} (replay with SEED=${seed})`);
        await runSeed(seed);
    }
    const after = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP') || r === 'Timeout').length;
    const detail = process.getActiveResourcesInfo().join(', ');
    assert.ok(after <= before, `handles: ${before} before, ${after} after: ${detail}`);
});
