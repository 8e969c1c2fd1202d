// Goal: ReadIndex rounds are pipelined — a read arriving while a round is in flight gets a round
// of its own at once — and a quorum echo of round r releases exactly the reads of rounds <= r,
// each at the commit index its round started with.
// Method: direct calls on ReadOnly with hand-checked expectations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadOnly } from '../../src/raft/read-only.js';

test('read rounds: a read in flight does not hold back the next round; echoes release in order', () => {
    const r = new ReadOnly();
    assert.equal(r.wantsRound(), false, 'no read, no round');
    r.add(1);
    r.add(2);
    assert.equal(r.wantsRound(), true);
    assert.equal(r.startRound(10), 1);
    assert.equal(r.wantsRound(), false, 'both reads joined round 1');
    r.add(3);
    assert.equal(r.wantsRound(), true, 'round 1 in flight does not make read 3 wait for it');
    assert.equal(r.startRound(11), 2);
    r.add(4);
    assert.equal(r.startRound(12), 3);
    assert.deepEqual(r.confirm(1), [{ requestId: 1, index: 10 }, { requestId: 2, index: 10 }]);
    assert.deepEqual(r.confirm(1), [], 'an old echo releases nothing twice');
    assert.deepEqual(r.confirm(3), [{ requestId: 3, index: 11 }, { requestId: 4, index: 12 }],
        'an echo of round 3 covers round 2 as well');
    assert.equal(r.size, 0);
    assert.throws(() => r.confirm(4), /never started/);
});

test('read rounds: leadership ends — every pending read fails and numbering restarts', () => {
    const r = new ReadOnly();
    r.add(1);
    r.startRound(5);
    r.add(2);
    assert.deepEqual(r.drain(), [1, 2]);
    assert.equal(r.wantsRound(), false);
    assert.equal(r.round, 0);
    r.add(3);
    assert.equal(r.startRound(9), 1);
    assert.deepEqual(r.confirm(1), [{ requestId: 3, index: 9 }]);
});
