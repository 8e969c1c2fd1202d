// Goal: a quick end-to-end check that a cluster elects a leader, replicates and commits.
// Method: drive three cores with the Env harness and stabilize.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Env } from './env.js';

test('three nodes elect a leader and commit a proposal', () => {
    const env = new Env();
    env.addNodes({ count: 3 });
    env.core(1n).campaignNow();
    env.stabilize();
    assert.equal(env.leader(), 1n);
    env.core(1n).propose(new TextEncoder().encode('x'));
    env.stabilize();
    // The leader commits at once; the followers learn the commit index from the next
    // heartbeat (no separate commit notice, see RaftCore.broadcastCommit).
    assert.equal(env.core(1n).status().commitIndex, 3, env.describeLog(1n));
    assert.equal(env.core(2n).status().commitIndex, 2, env.describeLog(2n));
    env.tick(1n);
    env.stabilize();
    for (const id of [1n, 2n, 3n]) {
        assert.equal(env.core(id).status().commitIndex, 3, env.describeLog(id));
        assert.equal(env.node(id).applied.length, 3);
    }
});
