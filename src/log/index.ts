// The durable raft log: public surface for src/node. See log-store.ts for the driver's usage
// and docs/disk-format.md for the bytes on disk.

export { LogStore } from './log-store.js';
export type { LoadedLog, LogStoreOptions } from './log-store.js';
export { SnapshotStore } from './snapshot-store.js';
export type { SnapshotReader, SnapshotWriter } from './snapshot-store.js';
