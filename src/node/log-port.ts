// The LogPort over the durable LogStore (src/log). Every call is queued by the store in call
// order and resolves when durable, so one Ready's writes are issued back to back and writes
// from several Readies share fsyncs (group commit).

import type { LogStore } from '../log/index.js';
import type { LogIndex } from '../raft/types.js';
import type { LogPort, LogWrite } from './ports.js';

export class LogStorePort implements LogPort {
    constructor(private readonly store: LogStore) {}

    persist(write: LogWrite): Promise<void> {
        const pending: Promise<void>[] = [];
        if (write.snapshot !== undefined) {
            // The snapshot's data was committed to the snapshot store before the core saw the
            // InstallSnapshot message; here the log is reset to it (log-store.ts explains the
            // order: drop a conflicting suffix first, then everything up to the snapshot).
            pending.push(this.store.truncateSuffix(write.snapshot.index + 1));
            pending.push(this.store.compactPrefix(write.snapshot.index));
        }
        if (write.hardState !== undefined) pending.push(this.store.setHardState(write.hardState));
        if (write.truncateFrom !== undefined) pending.push(this.store.truncateSuffix(write.truncateFrom));
        if (write.entries.length > 0) pending.push(this.store.append(write.entries));
        return Promise.all(pending).then(() => undefined);
    }

    compact(upTo: LogIndex): Promise<void> {
        return this.store.compactPrefix(upTo);
    }
}
