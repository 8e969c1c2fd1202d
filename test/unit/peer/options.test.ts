// Goal: the transport refuses bad configuration up front and reads dqlite-style addresses.
// Method: a table of addresses with their dial targets; limits that break a relation each
// raise ConfigError (asserted by code).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../../src/peer/address.js';
import { DEFAULT_PEER_LIMITS, resolvePeerLimits } from '../../../src/peer/limits.js';
import { PeerTransport } from '../../../src/peer/transport.js';

test('addresses: host:port, [ipv6]:port, @abstract; anything else is unusable', () => {
    assert.deepEqual(parseAddress('127.0.0.1:9001'), { host: '127.0.0.1', port: 9001 });
    assert.deepEqual(parseAddress('node-1.example:65535'), { host: 'node-1.example', port: 65535 });
    assert.deepEqual(parseAddress('[::1]:9001'), { host: '::1', port: 9001 });
    assert.deepEqual(parseAddress('@dqlite-1'), { path: '\0dqlite-1' });
    const unusable = ['', '@', 'host', 'host:', ':9001', 'host:0', 'host:65536', 'host:12a', '::1:9001', '[::1]9001'];
    for (const bad of unusable) assert.equal(parseAddress(bad), undefined, bad);
});

test('limits: defaults are valid, broken relations are ConfigErrors', () => {
    assert.deepEqual(resolvePeerLimits(), DEFAULT_PEER_LIMITS);
    const bad = [
        { frameBytesMax: 0 },
        { queueMessagesMax: -1 },
        { backoffInitialMs: 500, backoffMaxMs: 100 },
        { snapshotChunkBytes: DEFAULT_PEER_LIMITS.frameBytesMax },
        { dialTimeoutMs: 1.5 },
        { frameBytesMax: 2 ** 33 },
    ];
    for (const limits of bad) {
        assert.throws(() => resolvePeerLimits(limits), { code: 'ERR_CONFIG' }, JSON.stringify(limits));
    }
    const zeroId = (): PeerTransport => new PeerTransport({ id: 0n, address: 'a:1', onMessage: () => undefined });
    assert.throws(zeroId, { code: 'ERR_CONFIG' });
});
