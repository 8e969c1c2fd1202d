// Basic raft vocabulary shared by the core, the log store, the state machine and the
// transport. Names follow the Raft paper. Terms and indexes are plain safe integers; node ids
// are u64 (dqlite's ids use all 64 bits), so they are bigints and cannot be mixed up with them.

export type Term = number;
export type LogIndex = number;
export type NodeId = bigint;

/** Entry kinds, with dqlite's numbering: COMMAND=1, BARRIER=2, CHANGE=3. */
export const EntryType = {
    command: 1,
    barrier: 2,
    change: 3,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
    readonly term: Term;
    readonly index: LogIndex;
    readonly type: EntryType;
    /** The payload. A command's FSM bytes, a change's encoded configuration, empty for a barrier. */
    readonly data: Uint8Array;
}

/** What must be durable before a node acts on it: the current term and the vote in it. */
export interface HardState {
    readonly term: Term;
    /** The node voted for in `term`, or 0n for none. */
    readonly vote: NodeId;
}

/**
 * Roles as raft uses them. The wire uses dqlite's codes (voter 0, standby 1, spare 2); the
 * translation lives in the wire layer, never here.
 */
export type Role = 'voter' | 'standby' | 'spare';

export interface ServerInfo {
    readonly id: NodeId;
    readonly address: string;
    readonly role: Role;
}

export interface Configuration {
    readonly servers: readonly ServerInfo[];
}

/** Metadata of a snapshot: the last entry it covers and the configuration at that entry. */
export interface SnapshotMeta {
    readonly index: LogIndex;
    readonly term: Term;
    readonly configuration: Configuration;
    /** Index of the entry that carried `configuration` (for membership rollback rules). */
    readonly configurationIndex: LogIndex;
}
