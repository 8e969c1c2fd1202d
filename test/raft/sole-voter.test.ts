// Goal: the only voter of its configuration campaigns at its first tick (a one-node cluster
// leads at once instead of after an election timeout), or before any tick when its driver
// starts (campaignIfSoleVoter), still only once its vote is durable, and nothing changes for a
// server that is one voter among several.
// Method: drive cores with the Env harness: tick once, then hand Readies over step by step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Env } from './env.js';

test('a sole voter campaigns at its first tick and leads once its vote is durable', () => {
    const env = new Env();
    env.addNodes({ count: 1 });
    const core = env.core(1n);
    assert.equal(core.status().soft.role, 'follower');
    env.tick(1n);
    assert.equal(core.status().soft.role, 'candidate', 'campaigned at the first tick');
    const term = core.status().soft.term;
    // The vote is not durable yet: it must not lead, and further ticks do not start new terms.
    assert.ok(env.takeReady(1n) !== undefined);
    env.tick(1n, 3);
    assert.equal(core.status().soft.role, 'candidate');
    assert.equal(core.status().soft.term, term, 'no new election while the vote is being persisted');
    env.persist(1n);
    assert.equal(core.status().soft.role, 'leader');
    env.stabilize();
    assert.equal(core.status().commitIndex, core.status().lastIndex, 'its no-op committed');
});

test('a sole voter restarted with a log leads at its first tick again', () => {
    const env = new Env();
    env.addNodes({ count: 1 });
    env.tick(1n);
    env.stabilize();
    env.core(1n).propose(new TextEncoder().encode('x'));
    env.stabilize();
    const before = env.core(1n).status();
    env.restart(1n);
    env.tick(1n);
    env.stabilize();
    const after = env.core(1n).status();
    assert.equal(after.soft.role, 'leader');
    assert.ok(after.soft.term > before.soft.term);
    assert.equal(after.commitIndex, before.lastIndex + 1, 'everything before plus the new no-op committed');
});

test('campaignIfSoleVoter: a sole voter leads without a tick; nothing happens to a voter among three', () => {
    const one = new Env();
    one.addNodes({ count: 1 });
    one.core(1n).campaignIfSoleVoter();
    assert.equal(one.core(1n).status().soft.role, 'candidate', 'campaigned before any tick');
    one.stabilize();
    assert.equal(one.core(1n).status().soft.role, 'leader');
    one.core(1n).campaignIfSoleVoter();
    assert.equal(one.core(1n).status().soft.role, 'leader', 'a leader is left alone');

    const three = new Env();
    three.addNodes({ count: 3 });
    three.core(1n).campaignIfSoleVoter();
    assert.equal(three.core(1n).status().soft.role, 'follower');
    assert.equal(three.core(1n).status().soft.term, 1);
});

test('one voter among three does not campaign before its election timeout', () => {
    const env = new Env();
    env.addNodes({ count: 3 });
    env.tick(1n, 9); // below the minimum election timeout of 10 ticks
    assert.equal(env.core(1n).status().soft.role, 'follower');
    assert.equal(env.core(1n).status().soft.term, 1);
});

test('a voter left alone by a configuration with spares campaigns at its first tick', () => {
    const env = new Env();
    env.addNodes({ count: 3, roles: new Map([[2n, 'spare'], [3n, 'standby']]) });
    env.tick(1n);
    env.stabilize();
    assert.equal(env.leader(), 1n);
    env.tick(2n, 30);
    env.tick(3n, 30);
    env.stabilize();
    assert.equal(env.leader(), 1n, 'spares and standbys never campaign');
});
