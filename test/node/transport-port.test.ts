// Goal: the addresses the node learns from CONNECT requests of peers outside its configuration are
// bounded (a client that sent CONNECTs with ever new ids grew the node's peer list for good), the
// newest are the ones kept, and a peer that joins the configuration moves out of them.
// Method: PeerTransportPort over a stand-in transport that records every peer list it is given.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerTransport } from '../../src/peer/index.js';
import { LEARNED_MAX, PeerTransportPort } from '../../src/node/transport-port.js';

test('learned peer addresses are bounded, newest kept; configuration members are not among them', () => {
    const lists: { id: bigint; address: string }[][] = [];
    const transport = { state: 'open', setPeers: (peers: { id: bigint; address: string }[]) => lists.push(peers) };
    const port = new PeerTransportPort(transport as unknown as PeerTransport, () => [][Symbol.iterator]() as never);
    port.setPeers({ servers: [
        { id: 1n, address: 'n1:1', role: 'voter' }, { id: 2n, address: 'n2:1', role: 'voter' },
    ] });
    for (let i = 0; i < 1000; i++) port.learn(BigInt(100 + i), `x${i}:1`);
    const last = lists.at(-1) ?? [];
    assert.equal(last.length, 2 + LEARNED_MAX);
    assert.deepEqual(last.slice(0, 2).map((p) => p.id), [1n, 2n]);
    assert.deepEqual(last.slice(2).map((p) => p.id),
        Array.from({ length: LEARNED_MAX }, (_, i) => BigInt(100 + 1000 - LEARNED_MAX + i)));
    // A learned peer that the configuration adds is no longer a learned one.
    port.setPeers({ servers: [
        { id: 1n, address: 'n1:1', role: 'voter' }, { id: 1099n, address: 'x999:1', role: 'spare' },
    ] });
    assert.deepEqual((lists.at(-1) ?? []).filter((p) => p.id === 1099n).length, 1);
    assert.equal((lists.at(-1) ?? []).length, 2 + LEARNED_MAX - 1);
});
