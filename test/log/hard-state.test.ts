// Goal: term/vote writes that queue up behind one in flight are written once, as the newest,
// and each call still resolves only after a state at least as new as its own is durable; a
// hard state is never merged across an append or into an older term, and a failed merged
// write rejects every call it carried.
// Method: SimFs with an operation hook that records the writes to metadata and segment files;
// calls fired without awaiting in between; reload after a power cut that keeps only synced data.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimFs, crashPlans } from '../../src/lib/sim-fs.js';
import { LogStore } from '../../src/log/log-store.js';
import type { Entry } from '../../src/raft/types.js';

const DIR = '/d/raft';

function entry(index: number, term: number): Entry {
    return { index, term, type: 1, data: new Uint8Array(100).fill(index) };
}

/** The kinds of file written, in order ('m' metadata, 's' segment), from now on. */
function recordWrites(fs: SimFs): string[] {
    const writes: string[] = [];
    fs.onOp = (ev) => {
        if (ev.kind !== 'write') return;
        if (ev.path.includes('/metadata')) writes.push('m');
        else if (ev.path.includes('/open-')) writes.push('s');
    };
    return writes;
}

async function reload(fs: SimFs): Promise<{ term: number; vote: bigint; last: number }> {
    const survivor = fs.crash(crashPlans.dropAll());
    const { store, state } = await LogStore.open({ fs: survivor, dir: DIR, segmentBytes: 64 * 1024 });
    await store.close();
    return { ...state.hardState, last: state.entries.length };
}

test('hard states queued behind one in flight are written once, as the newest', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await LogStore.open({ fs, dir: DIR, segmentBytes: 64 * 1024 });
    await store.setHardState({ term: 1, vote: 0n });
    const writes = recordWrites(fs);
    const resolved: number[] = [];
    const calls = [2, 3, 4, 5].map((term) => store.setHardState({ term, vote: BigInt(term) })
        .then(() => resolved.push(term)));
    await Promise.all(calls);
    // The first may go alone (when the pump takes it at once); the ones queued behind it merge.
    assert.ok(writes.length >= 1 && writes.length <= 2 && writes.every((w) => w === 'm'), writes.join());
    assert.deepEqual(resolved, [2, 3, 4, 5]);
    assert.deepEqual(store.hardState, { term: 5, vote: 5n });
    fs.onOp = undefined;
    assert.deepEqual(await reload(fs), { term: 5, vote: 5n, last: 0 });
});

test('a hard state is not merged across an append, nor into an older term', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await LogStore.open({ fs, dir: DIR, segmentBytes: 64 * 1024 });
    await store.append([entry(1, 1)]);
    const writes = recordWrites(fs);
    await Promise.all([
        store.setHardState({ term: 6, vote: 1n }),
        store.append([entry(2, 6)]),
        store.setHardState({ term: 7, vote: 2n }),
        store.setHardState({ term: 3, vote: 3n }),
    ]);
    // Older terms never come from raft; if they do, the calls are written one by one, in order.
    assert.deepEqual(writes, ['m', 's', 'm', 'm']);
    assert.deepEqual(store.hardState, { term: 3, vote: 3n });
    fs.onOp = undefined;
    assert.deepEqual(await reload(fs), { term: 3, vote: 3n, last: 2 });
});

test('a failed merged hard-state write rejects every call it carried and stops the store', async () => {
    const fs = new SimFs({ dirs: ['/d'] });
    const { store } = await LogStore.open({ fs, dir: DIR, segmentBytes: 64 * 1024 });
    await store.setHardState({ term: 1, vote: 0n });
    await store.setHardState({ term: 2, vote: 0n });
    // Both metadata files exist now: each write is write + datasync. Fail the next datasync.
    fs.injectFault({ at: 0, kinds: ['datasync'], code: 'EIO' });
    const writes = recordWrites(fs);
    const results = await Promise.allSettled([3, 4, 5].map((term) => store.setHardState({ term, vote: 0n })));
    assert.deepEqual(writes, ['m'], 'no write after the failed one');
    for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_STORAGE');
    }
    assert.equal(store.failure?.code, 'ERR_STORAGE');
    await store.close();
});
