// Linearizable reads without log writes (dissertation §6.4, ReadIndex). The leader:
//   1. must have committed an entry of its current term (its no-op), so its commit index is
//      at least every entry committed by earlier leaders;
//   2. records the commit index as the read's index and starts a confirmation round: the
//      round number rides on the next AppendEntries to every follower, which echo it back;
//   3. once a quorum of voters (the leader included) echoed a round ≥ the read's round, it
//      was still leader when the read arrived, and the read may be served after applying up
//      to its index.
// Rounds are pipelined: a read that arrives while a round is in flight starts a new round
// rather than waiting for the in-flight one to finish (which cost it 1.5 round trips on average
// instead of one). Round numbers grow, a follower echoes the newest it saw, and a quorum echo
// of round r releases every read of rounds <= r. Batching still holds: every read of one
// event-loop turn shares one heartbeat per follower — the core coalesces the empty
// AppendEntries of one Ready to the newest (core.ts: coalesceEmptyAppends), so rounds cost at
// most one message per follower per Ready.

import { assert } from '../lib/assert.js';
import type { LogIndex } from './types.js';

interface PendingRead {
    readonly requestId: number;
    /** Set when the read joins a round. */
    index: LogIndex;
    round: number;
}

export class ReadOnly {
    private pending: PendingRead[] = [];
    /** The newest round started in this term (0 = none). */
    round = 0;
    /** The newest round confirmed by a quorum. */
    private confirmed = 0;
    /** Reads in `pending` that no round covers yet (round 0): always its tail. */
    private waiting = 0;

    add(requestId: number): void {
        this.pending.push({ requestId, index: 0, round: 0 });
        this.waiting++;
    }

    get size(): number {
        return this.pending.length;
    }

    /** Whether a new round should start: reads are waiting that no round covers yet. */
    wantsRound(): boolean {
        return this.waiting > 0;
    }

    /** Starts a round for every waiting read at `commitIndex`; returns the round number. */
    startRound(commitIndex: LogIndex): number {
        assert(this.wantsRound(), 'read round started with no read waiting for one');
        this.round++;
        for (let i = this.pending.length - this.waiting; i < this.pending.length; i++) {
            const read = this.pending[i] as PendingRead;
            assert(read.round === 0, 'a read covered by a round behind one that is not');
            read.round = this.round;
            read.index = commitIndex;
        }
        this.waiting = 0;
        return this.round;
    }

    /** A quorum confirmed rounds up to `round`: returns the reads it releases. */
    confirm(round: number): { requestId: number; index: LogIndex }[] {
        if (round <= this.confirmed) return [];
        assert(round <= this.round, `confirmed read round ${round} was never started (${this.round})`);
        this.confirmed = round;
        const released = this.pending.filter((r) => r.round !== 0 && r.round <= round);
        this.pending = this.pending.filter((r) => r.round === 0 || r.round > round);
        return released.map((r) => ({ requestId: r.requestId, index: r.index }));
    }

    /** Leadership ended: every pending read fails. */
    drain(): number[] {
        const ids = this.pending.map((r) => r.requestId);
        this.pending = [];
        this.waiting = 0;
        this.round = 0;
        this.confirmed = 0;
        return ids;
    }
}
