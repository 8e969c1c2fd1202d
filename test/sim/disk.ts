// The simulated disk of one node. A write becomes durable only when its simulated latency has
// passed; writes complete in the order they were issued (one ordered queue per node, as the
// driver contract asks). A crash forgets every write that was not durable yet, except that,
// in seeds that ask for it, a random prefix of the pending writes is kept: data can reach the
// platter before the node hears about it.

import type { Message } from '../../src/raft/messages.js';
import type { Entry, HardState, LogIndex, SnapshotMeta, Term } from '../../src/raft/types.js';
import { SimFailure } from './failure.js';
import { LogView } from './log-view.js';
import type { SmSnapshot } from './state-machine.js';

export interface StoredSnapshot {
    readonly meta: SnapshotMeta;
    readonly data: SmSnapshot;
}

/** A message released once its write is durable, with what it promises about the disk. */
export interface AfterPersistMessage {
    readonly message: Message;
    /** For a successful AppendEntries response: the prefix hash its index must have on disk. */
    readonly expectedPrefix: number | undefined;
}

export interface PendingWrite {
    readonly completeAt: number;
    /** Writes of one batch become durable together (group commit). */
    readonly batch: number;
    /** A snapshot received from the leader, to install (resets the log). */
    readonly install: StoredSnapshot | undefined;
    readonly hardState: HardState | undefined;
    readonly truncateFrom: LogIndex | undefined;
    readonly entries: readonly Entry[];
    readonly lastEntry: { readonly index: LogIndex; readonly term: Term } | undefined;
    readonly after: readonly AfterPersistMessage[];
    /** A snapshot this node's state machine took, to store before compacting the log. */
    readonly take: { readonly snapshot: StoredSnapshot; readonly keepTrailing: number } | undefined;
}

export class SimDisk {
    hardState: HardState = { term: 0, vote: 0n };
    snapshot: StoredSnapshot | undefined = undefined;
    readonly log = new LogView({ keepEntries: true });
    pending: PendingWrite[] = [];
    private readonly nodeId: number;

    constructor(nodeId: number) {
        this.nodeId = nodeId;
    }

    /** True if the durable state holds index `index` with the given prefix hash (or a snapshot past it). */
    holds(index: LogIndex, prefix: number | undefined): boolean {
        if (this.snapshot !== undefined && this.snapshot.meta.index >= index) return true;
        const durable = this.log.prefixAt(index);
        return durable !== undefined && (prefix === undefined || durable === prefix);
    }

    /** Makes one write durable, checking the driver contract's shape rules as it goes. */
    apply(write: PendingWrite): void {
        const fail = (message: string): never => {
            throw new SimFailure('safety', `node ${this.nodeId} disk: ${message}`);
        };
        if (write.install !== undefined) {
            const meta = write.install.meta;
            this.snapshot = write.install;
            this.log.reset(meta.index, meta.term, write.install.data.stateHash);
        }
        if (write.hardState !== undefined) {
            const next = write.hardState;
            if (next.term < this.hardState.term) {
                fail(`durable term goes back from ${this.hardState.term} to ${next.term}`);
            }
            if (next.term === this.hardState.term && this.hardState.vote !== 0n && next.vote !== this.hardState.vote) {
                fail(`durable vote in term ${next.term} changes from ${this.hardState.vote} to ${next.vote}`);
            }
            this.hardState = next;
        }
        if (write.truncateFrom !== undefined) {
            if (write.truncateFrom <= this.log.baseIndex) {
                fail(`truncateFrom ${write.truncateFrom} reaches into the snapshot/base ${this.log.baseIndex}`);
            }
            this.log.truncateFrom(write.truncateFrom);
        }
        for (const entry of write.entries) {
            if (entry.index !== this.log.lastIndex + 1) {
                fail(`entry ${entry.index} does not follow the stored last index ${this.log.lastIndex}`);
            }
            this.log.append(entry);
        }
        if (write.take !== undefined) this.storeTakenSnapshot(write.take.snapshot, write.take.keepTrailing);
    }

    private storeTakenSnapshot(snapshot: StoredSnapshot, keepTrailing: number): void {
        const index = snapshot.meta.index;
        if (this.snapshot !== undefined && this.snapshot.meta.index >= index) return;
        if (index > this.log.lastIndex || index < this.log.baseIndex) return;
        this.snapshot = snapshot;
        this.log.compactTo(Math.max(this.log.baseIndex, index - keepTrailing));
    }
}
