// Goal: the inflight window and the progress state machine behave as etcd's tracker does.
// Method: direct calls with hand-checked expectations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Inflights } from '../../src/raft/inflights.js';
import { Progress } from '../../src/raft/progress.js';

test('inflights: bounded FIFO freed by acknowledged index, wrapping around the ring', () => {
    const f = new Inflights(3);
    f.add(5);
    f.add(7);
    f.add(9);
    assert.ok(f.isFull());
    assert.throws(() => f.add(10), { code: 'ERR_ASSERTION' });
    f.freeLE(7);
    assert.equal(f.count, 1);
    f.add(11);
    f.add(12);
    assert.ok(f.isFull());
    f.freeLE(4);
    assert.equal(f.count, 3, 'an old acknowledgement frees nothing');
    f.freeFirst();
    assert.equal(f.count, 2);
    f.freeLE(100);
    assert.equal(f.count, 0);
    assert.throws(() => { f.add(3); f.add(2); }, { code: 'ERR_ASSERTION' });
});

test('progress: probe pauses after one message; replicate pipelines up to the bound', () => {
    const p = new Progress(10, 2);
    assert.equal(p.state, 'probe');
    p.sentEntries(12, 3);
    assert.ok(p.isPaused());
    assert.equal(p.next, 10, 'probe does not advance next');
    assert.ok(p.maybeUpdate(12));
    assert.ok(!p.isPaused());
    p.becomeReplicate();
    assert.equal(p.next, 13);
    p.sentEntries(14, 2);
    p.sentEntries(16, 2);
    assert.ok(p.isPaused(), 'two messages in flight');
    assert.equal(p.next, 17);
    p.maybeUpdate(14);
    p.inflights.freeLE(14);
    assert.ok(!p.isPaused());
});

test('progress: rejections back off, stale rejections are ignored', () => {
    const p = new Progress(20, 4);
    p.match = 5;
    assert.equal(p.maybeDecreaseTo(18, 10), false, 'not the probe in flight');
    assert.equal(p.maybeDecreaseTo(19, 10), true);
    assert.equal(p.next, 11, 'jumps to the hint');
    assert.equal(p.maybeDecreaseTo(10, 2), true);
    assert.equal(p.next, 6, 'never below match + 1');
    p.becomeReplicate();
    p.sentEntries(9, 4);
    assert.equal(p.maybeDecreaseTo(4, 0), false, 'rejection below match is stale');
    assert.equal(p.maybeDecreaseTo(8, 0), true);
    assert.equal(p.next, 6);
});

test('progress: snapshot state sends nothing and resumes after the snapshot index', () => {
    const p = new Progress(3, 4);
    p.becomeSnapshot(50);
    assert.ok(p.isPaused());
    p.becomeProbe();
    assert.equal(p.next, 51);
});
