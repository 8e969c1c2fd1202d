// Goal: the quorum arithmetic used for commit, votes, check-quorum and ReadIndex is right.
// Method: compare the fast functions with obviously correct brute-force versions on seeded
// random inputs (etcd's quorum/quick_test.go idea); the seed is printed and fixed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.js';
import { majorityValue, quorumSize, voteResult } from '../../src/raft/quorum.js';

const SEED = 20261125;

/** The largest v such that at least a majority of values are >= v (0 when none). */
function slowMajorityValue(values: readonly number[]): number {
    let best = 0;
    for (const candidate of values) {
        const count = values.filter((v) => v >= candidate).length;
        if (count * 2 > values.length) best = Math.max(best, candidate);
    }
    return best;
}

test(`majorityValue matches the brute-force reference (seed ${SEED})`, () => {
    const random = new SeededRandom(SEED);
    for (let i = 0; i < 2000; i++) {
        const values = Array.from({ length: random.int(8) }, () => random.int(20));
        assert.equal(majorityValue(values), slowMajorityValue(values), JSON.stringify(values));
    }
});

test('quorumSize is a strict majority', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(quorumSize), [1, 2, 2, 3, 3, 4, 4]);
});

test(`voteResult: won with a majority, lost once a majority is impossible (seed ${SEED})`, () => {
    const random = new SeededRandom(SEED + 1);
    for (let i = 0; i < 2000; i++) {
        const voters = Array.from({ length: 1 + random.int(7) }, (_, k) => k);
        const answers = new Map<number, boolean>();
        for (const v of voters) {
            const r = random.int(3);
            if (r < 2) answers.set(v, r === 0);
        }
        const yes = [...answers.values()].filter((a) => a).length;
        const no = [...answers.values()].filter((a) => !a).length;
        const q = Math.floor(voters.length / 2) + 1;
        const expected = yes >= q ? 'won' : voters.length - no < q ? 'lost' : 'pending';
        assert.equal(voteResult(voters, answers), expected);
    }
    // Answers from non-voters never count.
    assert.equal(voteResult([1], new Map([[2, true]])), 'pending');
    assert.equal(voteResult([], new Map()), 'lost');
});
