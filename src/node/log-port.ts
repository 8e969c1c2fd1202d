// The LogPort over the durable LogStore (src/log). Every call is queued by the store in call
// order and resolves when durable, so one Ready's writes are issued back to back and writes
// from several Readies share fsyncs (group commit).

import type { LogStore } from '../log/index.js';
import type { LogIndex, SnapshotMeta } from '../raft/types.js';
import type { LogPort, LogWrite } from './ports.js';

export class LogStorePort implements LogPort {
    constructor(
        private readonly store: LogStore,
        /** Commits the snapshot staged while it streamed in (SnapshotManager.commitStaged). */
        private readonly commitSnapshot: (meta: SnapshotMeta) => Promise<void>,
    ) {}

    /** The snapshot install in progress: later writes are issued only after it (see persist). */
    private installing: Promise<void> | undefined;

    persist(write: LogWrite): Promise<void> {
        // An install awaits between its steps, so a write issued meanwhile (the next Ready)
        // would reach the store before the install's compaction and its own writes, out of
        // order (found by the raft simulator: "append at N does not follow M"). Writes issued
        // during an install therefore wait for it; group commit still applies among them.
        const before = this.installing;
        let done: Promise<void>;
        if (write.snapshot !== undefined) {
            const snapshot = write.snapshot;
            done = before === undefined
                ? this.persistWithSnapshot(snapshot, write)
                : before.then(() => this.persistWithSnapshot(snapshot, write));
            const mark = done.catch(() => undefined);
            this.installing = mark;
            void mark.then(() => {
                if (this.installing === mark) this.installing = undefined;
            });
        } else if (before !== undefined) {
            done = before.then(() => Promise.all(this.issue(write))).then(() => undefined);
        } else {
            done = Promise.all(this.issue(write)).then(() => undefined);
        }
        return done;
    }

    private issue(write: LogWrite): Promise<void>[] {
        const pending: Promise<void>[] = [];
        if (write.hardState !== undefined) pending.push(this.store.setHardState(write.hardState));
        if (write.truncateFrom !== undefined) pending.push(this.store.truncateSuffix(write.truncateFrom));
        if (write.entries.length > 0) pending.push(this.store.append(write.entries));
        return pending;
    }

    /**
     * Installing a snapshot, in the order log-store.ts requires: drop a conflicting suffix, make
     * the snapshot durable, then drop everything up to it; then the rest of the Ready's writes.
     * The Ready's hard state is made durable before all of it (the driver contract, ready.ts): a
     * crash after the snapshot's rename must not leave a snapshot of a term above the stored term.
     */
    private async persistWithSnapshot(snapshot: SnapshotMeta, write: LogWrite): Promise<void> {
        if (write.hardState !== undefined) await this.store.setHardState(write.hardState);
        await this.store.truncateSuffix(snapshot.index + 1);
        await this.commitSnapshot(snapshot);
        await this.store.compactPrefix(snapshot.index);
        await Promise.all(this.issue({ ...write, hardState: undefined }));
    }

    compact(upTo: LogIndex): Promise<void> {
        return this.store.compactPrefix(upTo);
    }
}
