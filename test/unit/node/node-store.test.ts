// Goal: cluster.yaml is byte-compatible with go-dqlite's YAML node store and survives a crash.
// Method: golden text in yaml.v2's layout, round trips, and a write on the simulated FS
// followed by a crash image that must hold either the old or the new store.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNodeStore, encodeNodeStore, readNodeStore, writeNodeStore } from '../../../src/node/node-store.js';

const golden = '- ID: 3297041220608546238\n  Address: 127.0.0.1:9001\n  Role: 0\n'
    + '- ID: 11542800920142819957\n  Address: 127.0.0.1:9002\n  Role: 2\n';

test('encodes in go-dqlite yaml.v2 layout and decodes it back', () => {
    const nodes = [
        { id: 0x2dc171858c3155ben, address: '127.0.0.1:9001', role: 'voter' as const },
        { id: 0xa0304447ce2a3275n, address: '127.0.0.1:9002', role: 'spare' as const },
    ];
    assert.equal(encodeNodeStore(nodes), golden);
    assert.deepEqual(decodeNodeStore(golden), nodes);
    assert.equal(encodeNodeStore([]), '[]\n');
    assert.deepEqual(decodeNodeStore('[]\n'), []);
    assert.deepEqual(decodeNodeStore('- ID: 5\n  Address: "a b"\n  Role: 1\n'), [{ id: 5n, address: 'a b', role: 'standby' }]);
});

test('rejects malformed stores with a typed storage error', () => {
    assert.throws(() => decodeNodeStore('- Address: x\n'), { code: 'ERR_STORAGE_CORRUPT' });
    assert.throws(() => decodeNodeStore('- ID: 1\n  Address: x\n  Role: 7\n'), { code: 'ERR_STORAGE_CORRUPT' });
    assert.throws(() => decodeNodeStore('garbage'), { code: 'ERR_STORAGE_CORRUPT' });
});

test('a write is atomic across a crash at every operation boundary', async () => {
    const { SimFs, crashPlans } = await import('../../../src/lib/sim-fs.js');
    type Checkpoint = ReturnType<InstanceType<typeof SimFs>['checkpoint']>;
    const fs = new SimFs({ dirs: ['/d'] });
    const old = [{ id: 1n, address: 'a:1', role: 'voter' as const }];
    const next = [...old, { id: 2n, address: 'b:2', role: 'spare' as const }];
    await writeNodeStore(fs, '/d/cluster.yaml', old);
    const checkpoints: Checkpoint[] = [fs.checkpoint()];
    fs.onOp = () => void checkpoints.push(fs.checkpoint());
    await writeNodeStore(fs, '/d/cluster.yaml', next);
    fs.onOp = undefined;
    assert.ok(checkpoints.length >= 5);
    let images = 0;
    for (const cp of checkpoints) {
        for (const plan of [crashPlans.dropAll(), crashPlans.applyAll()]) {
            const image = SimFs.fromCheckpoint(cp, plan);
            const found = await readNodeStore(image, '/d/cluster.yaml');
            assert.ok(found.length === 1 || found.length === 2, `torn store: ${JSON.stringify(found.length)}`);
            images++;
        }
    }
    const last = SimFs.fromCheckpoint(checkpoints[checkpoints.length - 1] as Checkpoint, crashPlans.dropAll());
    assert.deepEqual(await readNodeStore(last, '/d/cluster.yaml'), next, 'the finished write is durable');
    assert.ok(images > 0);
    assert.deepEqual(await readNodeStore(fs, '/d/missing.yaml'), []);
});
