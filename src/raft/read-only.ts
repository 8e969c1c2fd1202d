// Linearizable reads without log writes (dissertation §6.4, ReadIndex). The leader:
//   1. must have committed an entry of its current term (its no-op), so its commit index is
//      at least every entry committed by earlier leaders;
//   2. records the commit index as the read's index and starts a confirmation round: the
//      round number rides on the next AppendEntries to every follower, which echo it back;
//   3. once a quorum of voters (the leader included) echoed a round ≥ the read's round, it
//      was still leader when the read arrived, and the read may be served after applying up
//      to its index.
// Reads that arrive while a round is in flight wait and share the next round (batching): at
// most one round is outstanding, so a burst of reads costs one heartbeat exchange.

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

    add(requestId: number): void {
        this.pending.push({ requestId, index: 0, round: 0 });
    }

    get size(): number {
        return this.pending.length;
    }

    /** Whether a new round should start: reads are waiting and none is in flight. */
    wantsRound(): boolean {
        return this.round === this.confirmed && this.pending.some((r) => r.round === 0);
    }

    /** Starts a round for every waiting read at `commitIndex`; returns the round number. */
    startRound(commitIndex: LogIndex): number {
        assert(this.wantsRound(), 'read round started while one is in flight');
        this.round++;
        for (const read of this.pending) {
            if (read.round === 0) {
                read.round = this.round;
                read.index = commitIndex;
            }
        }
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
        this.round = 0;
        this.confirmed = 0;
        return ids;
    }
}
