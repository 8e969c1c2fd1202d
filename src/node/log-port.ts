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

    persist(write: LogWrite): Promise<void> {
        if (write.snapshot !== undefined) return this.persistWithSnapshot(write.snapshot, write);
        return Promise.all(this.issue(write)).then(() => undefined);
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
     */
    private async persistWithSnapshot(snapshot: SnapshotMeta, write: LogWrite): Promise<void> {
        await this.store.truncateSuffix(snapshot.index + 1);
        await this.commitSnapshot(snapshot);
        await this.store.compactPrefix(snapshot.index);
        await Promise.all(this.issue(write));
    }

    compact(upTo: LogIndex): Promise<void> {
        return this.store.compactPrefix(upTo);
    }
}
