// The core's in-memory copy of the log (etcd's raftLog + unstable, merged): every entry after
// the base (the last entry covered by compaction or a snapshot), plus four indexes that say
// how far the driver got with them.
//
//   base ≤ applied ≤ committed ≤ last                (always)
//   persisted ≤ handedOut ≤ last                     (persisted may be < base right after a
//                                                     snapshot restore, until it is installed)
//
//   committed   known committed by a quorum; never decreases.
//   applied     the last entry handed out in Ready.committedEntries (or the snapshot restored).
//   persisted   the durable prefix of THIS log: the driver reported it with persisted(), and
//               no truncation has removed it since. The leader counts itself up to here.
//   handedOut   the last entry handed to the driver for writing (etcd's offsetInProgress).
//               Entries after it go out in the next Ready; a truncation at or below it becomes
//               Ready.truncateFrom.
//
// Committed entries are handed out only up to min(committed, persisted): the driver contract
// promises that what it applies is durable locally.

import { assert } from '../lib/assert.js';
import type { Entry, LogIndex, SnapshotMeta, Term } from './types.js';

export interface UnstableBatch {
    readonly truncateFrom: LogIndex | undefined;
    readonly entries: readonly Entry[];
}

export class RaftLog {
    private baseIndex: LogIndex;
    private baseTerm: Term;
    private log: Entry[] = [];
    committed: LogIndex;
    applied: LogIndex;
    persisted: LogIndex;
    private handedOut: LogIndex;
    private pendingTruncateFrom: LogIndex | undefined;
    /** A snapshot restored from a leader and not yet handed out in a Ready. */
    private pendingRestore: SnapshotMeta | undefined;
    /**
     * The newest snapshot this node has durably (installed, or taken by compact): the one sent
     * to laggards. A restored snapshot becomes it only once snapshotInstalled() reports it.
     */
    snapshot: SnapshotMeta | undefined;
    /** A restored snapshot handed out (or about to be) but not yet reported installed. */
    private installing: SnapshotMeta | undefined;

    constructor(snapshot: SnapshotMeta | undefined, entries: readonly Entry[], appliedIndex: LogIndex) {
        this.snapshot = snapshot;
        this.baseIndex = snapshot?.index ?? 0;
        this.baseTerm = snapshot?.term ?? 0;
        let expected = this.baseIndex + 1;
        for (const entry of entries) {
            assert(entry.index === expected, `initial entries not contiguous at ${entry.index}, expected ${expected}`);
            assert(entry.term >= (this.log.at(-1)?.term ?? this.baseTerm),
                `initial entry terms decrease at ${entry.index}`);
            this.log.push(entry);
            expected++;
        }
        assert(appliedIndex <= this.lastIndex(), `applied index ${appliedIndex} beyond the log`);
        this.committed = Math.max(this.baseIndex, appliedIndex);
        this.applied = this.committed;
        this.persisted = this.lastIndex();
        this.handedOut = this.lastIndex();
    }

    firstIndex(): LogIndex {
        return this.baseIndex + 1;
    }

    /** The index covered by the snapshot / compaction (its term is still known). */
    base(): { index: LogIndex; term: Term } {
        return { index: this.baseIndex, term: this.baseTerm };
    }

    lastIndex(): LogIndex {
        return this.baseIndex + this.log.length;
    }

    lastTerm(): Term {
        return this.log.at(-1)?.term ?? this.baseTerm;
    }

    /** The term of entry `index`, or undefined when it is compacted away or beyond the end. */
    term(index: LogIndex): Term | undefined {
        if (index === this.baseIndex) return this.baseTerm;
        if (index < this.baseIndex || index > this.lastIndex()) return undefined;
        return (this.log[index - this.baseIndex - 1] as Entry).term;
    }

    entry(index: LogIndex): Entry | undefined {
        if (index <= this.baseIndex || index > this.lastIndex()) return undefined;
        return this.log[index - this.baseIndex - 1];
    }

    matchTerm(index: LogIndex, term: Term): boolean {
        return this.term(index) === term;
    }

    /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
    isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
        return lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex());
    }

    /** Entries [lo, hi), at most `bytesMax` payload bytes but at least one entry. */
    slice(lo: LogIndex, hi: LogIndex, bytesMax = Infinity): Entry[] {
        assert(lo > this.baseIndex && lo <= hi && hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) out of range`);
        const out: Entry[] = [];
        let bytes = 0;
        for (let i = lo; i < hi; i++) {
            const entry = this.log[i - this.baseIndex - 1] as Entry;
            bytes += entry.data.length;
            if (out.length > 0 && bytes > bytesMax) break;
            out.push(entry);
        }
        return out;
    }

    /**
     * The largest index ≤ `index` whose term is ≤ `term` (etcd's findConflictByTerm), with its
     * term; the term is 0 when the search reached compacted entries.
     */
    findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
        let i = Math.min(index, this.lastIndex());
        for (; i >= this.baseIndex; i--) {
            const t = this.term(i) as Term;
            if (t <= term) return { index: i, term: t };
        }
        return { index: this.baseIndex, term: 0 };
    }

    /**
     * Appends entries that follow a matching prefix; an entry whose term differs from ours
     * truncates our log from there (§5.3). Entries we already have are skipped. Returns the
     * truncation index, if any.
     */
    appendFromLeader(entries: readonly Entry[]): LogIndex | undefined {
        let truncatedAt: LogIndex | undefined;
        for (let k = 0; k < entries.length; k++) {
            const entry = entries[k] as Entry;
            const ours = this.term(entry.index);
            if (ours === entry.term) continue;
            if (ours !== undefined) {
                truncatedAt = entry.index;
                this.truncateFrom(entry.index);
            }
            assert(entry.index === this.lastIndex() + 1, `gap appending ${entry.index} after ${this.lastIndex()}`);
            this.appendAll(entries.slice(k));
            break;
        }
        return truncatedAt;
    }

    /** Leader append: entries must follow the last index. */
    appendAll(entries: readonly Entry[]): void {
        for (const entry of entries) {
            assert(entry.index === this.lastIndex() + 1, `append ${entry.index} after ${this.lastIndex()}`);
            assert(entry.term >= this.lastTerm(), `entry ${entry.index} has term ${entry.term} < ${this.lastTerm()}`);
            this.log.push(entry);
        }
    }

    private truncateFrom(index: LogIndex): void {
        assert(index > this.committed, `truncating committed entry ${index} (commit ${this.committed})`);
        assert(index > this.baseIndex && index <= this.lastIndex(),
            `truncating at ${index} outside (${this.baseIndex}, ${this.lastIndex()}]`);
        this.log.length = index - this.baseIndex - 1;
        if (index <= this.handedOut) {
            this.pendingTruncateFrom = Math.min(this.pendingTruncateFrom ?? index, index);
            this.handedOut = index - 1;
        }
        this.persisted = Math.min(this.persisted, index - 1);
    }

    commitTo(index: LogIndex): void {
        assert(index <= this.lastIndex(), `commit ${index} beyond last ${this.lastIndex()}`);
        if (index > this.committed) this.committed = index;
    }

    /** The driver made the log durable up to (index, term); ignored if the log changed since. */
    stableTo(index: LogIndex, term: Term): boolean {
        if (index <= this.persisted || index <= this.baseIndex) return false;
        if (this.term(index) !== term) return false;
        assert(index <= this.handedOut, `persisted ${index} was never handed out (${this.handedOut})`);
        this.persisted = index;
        return true;
    }

    /** The snapshot restored at `index` is durable. */
    snapshotInstalled(index: LogIndex): void {
        if (index === this.baseIndex && this.persisted < index) this.persisted = index;
        if (this.installing !== undefined && this.installing.index === index) {
            if (this.snapshot === undefined || this.snapshot.index < index) this.snapshot = this.installing;
            this.installing = undefined;
        }
    }

    /** Replaces the whole log with a snapshot from the leader (§5.7 / dissertation §5.1). */
    restore(meta: SnapshotMeta): void {
        assert(meta.index > this.committed, `restoring snapshot ${meta.index} at or below commit ${this.committed}`);
        this.baseIndex = meta.index;
        this.baseTerm = meta.term;
        this.log = [];
        this.committed = meta.index;
        this.applied = meta.index;
        this.persisted = Math.min(this.persisted, meta.index - 1);
        this.handedOut = meta.index;
        this.pendingTruncateFrom = undefined;
        this.pendingRestore = meta;
        this.installing = meta;
    }

    /** Drops entries up to `index` (≤ applied): they are covered by a snapshot. */
    compact(index: LogIndex): void {
        if (index <= this.baseIndex) return;
        assert(index <= this.applied && index <= this.persisted, `compacting ${index} past applied/persisted`);
        this.baseTerm = this.term(index) as Term;
        this.log = this.log.slice(index - this.baseIndex);
        this.baseIndex = index;
    }

    takeRestore(): SnapshotMeta | undefined {
        const meta = this.pendingRestore;
        this.pendingRestore = undefined;
        return meta;
    }

    takeUnstable(): UnstableBatch {
        const truncateFrom = this.pendingTruncateFrom;
        const entries = this.handedOut < this.lastIndex() ? this.slice(this.handedOut + 1, this.lastIndex() + 1) : [];
        this.handedOut = this.lastIndex();
        this.pendingTruncateFrom = undefined;
        return { truncateFrom, entries };
    }

    hasUnstable(): boolean {
        return this.handedOut < this.lastIndex() || this.pendingTruncateFrom !== undefined
            || this.pendingRestore !== undefined;
    }

    /** The last index that may be applied now. */
    applicableIndex(): LogIndex {
        return Math.min(this.committed, this.persisted);
    }

    takeCommitted(): Entry[] {
        const upTo = this.applicableIndex();
        if (upTo <= this.applied) return [];
        const entries = this.slice(this.applied + 1, upTo + 1);
        this.applied = upTo;
        return entries;
    }

    hasCommitted(): boolean {
        return this.applicableIndex() > this.applied;
    }

    checkInvariants(): void {
        // Messages are built only on failure: this runs after every input.
        const ok = this.baseIndex <= this.applied && this.applied <= this.committed
            && this.committed <= this.lastIndex() && this.persisted <= this.handedOut
            && this.handedOut <= this.lastIndex();
        if (ok) return;
        assert(false, `log indexes out of order: base ${this.baseIndex} applied ${this.applied} commit `
            + `${this.committed} persisted ${this.persisted} handed out ${this.handedOut} last ${this.lastIndex()} `
            + '(want base ≤ applied ≤ commit ≤ last, persisted ≤ handed out ≤ last)');
    }
}
