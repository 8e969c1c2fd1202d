// The leader's view of one follower (etcd's tracker.Progress, dissertation §3.5 nextIndex and
// matchIndex). Three states:
//
//   probe      next is a guess; one AppendEntries at a time until the follower answers
//              (probeSent pauses it), then back off on rejection or switch to replicate.
//   replicate  next is optimistic: entries stream without waiting, up to the inflight bound.
//   snapshot   the follower needs entries the leader compacted: a snapshot is being streamed
//              and nothing else is sent until reportSnapshot() or an acknowledgement.
//
// Invariants: match < next; match never decreases while the leader stays leader.

import { assert } from '../lib/assert.js';
import { Inflights } from './inflights.js';
import type { LogIndex } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
    match: LogIndex = 0;
    next: LogIndex;
    state: ProgressState = 'probe';
    /** Probe state: a message is out and unanswered. */
    probeSent = false;
    /** Snapshot state: the index of the snapshot being sent. */
    pendingSnapshot: LogIndex = 0;
    /** Heard from in the current check-quorum period. */
    recentActive = false;
    lastContactTicks = 0;
    /** The highest ReadIndex round this follower echoed back in the current term. */
    readRoundAck = 0;
    readonly inflights: Inflights;

    constructor(next: LogIndex, inflightMessagesMax: number) {
        assert(next >= 1, `progress next ${next} < 1`);
        this.next = next;
        this.inflights = new Inflights(inflightMessagesMax);
    }

    private check(): void {
        assert(this.match < this.next, `progress match ${this.match} >= next ${this.next}`);
    }

    becomeProbe(): void {
        if (this.state === 'snapshot') {
            this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
        } else {
            this.next = this.match + 1;
        }
        this.state = 'probe';
        this.probeSent = false;
        this.pendingSnapshot = 0;
        this.inflights.reset();
        this.check();
    }

    becomeReplicate(): void {
        this.state = 'replicate';
        this.next = this.match + 1;
        this.probeSent = false;
        this.pendingSnapshot = 0;
        this.inflights.reset();
    }

    becomeSnapshot(index: LogIndex): void {
        this.state = 'snapshot';
        this.pendingSnapshot = index;
        this.probeSent = false;
        this.inflights.reset();
    }

    /** A success acknowledging `index`; returns whether match advanced. */
    maybeUpdate(index: LogIndex): boolean {
        let updated = false;
        if (index > this.match) {
            this.match = index;
            this.probeSent = false;
            updated = true;
        }
        this.next = Math.max(this.next, index + 1);
        this.check();
        return updated;
    }

    /**
     * A rejection of the message whose prevIndex was `rejected`; `probeFrom` is the leader's
     * best guess of the last matching index from the follower's hint. Returns false when the
     * rejection is stale (answers a message sent before a later reset).
     */
    maybeDecreaseTo(rejected: LogIndex, probeFrom: LogIndex): boolean {
        if (this.state === 'replicate') {
            if (rejected <= this.match) return false;
            this.next = this.match + 1;
            return true;
        }
        if (this.next - 1 !== rejected) return false;
        this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1);
        this.probeSent = false;
        this.check();
        return true;
    }

    /** Records an AppendEntries carrying entries up to `last` (count may be 0). */
    sentEntries(last: LogIndex, count: number): void {
        if (this.state === 'replicate') {
            if (count > 0) {
                this.next = last + 1;
                this.inflights.add(last);
            }
        } else if (this.state === 'probe') {
            this.probeSent = true;
        } else {
            assert(false, 'sending entries in snapshot state');
        }
        this.check();
    }

    isPaused(): boolean {
        switch (this.state) {
            case 'probe':
                return this.probeSent;
            case 'replicate':
                return this.inflights.isFull();
            case 'snapshot':
                return true;
        }
    }
}
