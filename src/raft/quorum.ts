// Quorum arithmetic over the voters of one configuration (single-server changes never need
// joint quorums). Pure functions, checked against a brute-force reference in
// test/raft/quorum.test.ts.

import { assert } from '../lib/assert.js';

/** Votes needed out of `voterCount`: a strict majority. */
export function quorumSize(voterCount: number): number {
    if (!Number.isInteger(voterCount) || voterCount < 0) assert(false, `bad voter count ${voterCount}`);
    return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest value that a majority of `values` has reached: sorted descending, the element at
 * position quorum - 1. With no voters nothing can be agreed on and the result is 0.
 */
export function majorityValue(values: readonly number[]): number {
    if (values.length === 0) return 0;
    const sorted = [...values].sort((a, b) => b - a);
    return sorted[quorumSize(values.length) - 1] as number;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The outcome of an election among `voters` given the answers so far (true = granted). Lost as
 * soon as a majority can no longer be reached.
 */
export function voteResult<K>(voters: readonly K[], answers: ReadonlyMap<K, boolean>): VoteResult {
    if (voters.length === 0) return 'lost';
    let granted = 0;
    let rejected = 0;
    for (const voter of voters) {
        const answer = answers.get(voter);
        if (answer === true) granted++;
        else if (answer === false) rejected++;
    }
    const quorum = quorumSize(voters.length);
    if (granted >= quorum) return 'won';
    if (voters.length - rejected < quorum) return 'lost';
    return 'pending';
}
