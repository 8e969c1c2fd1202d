// The messages between the Fsm (main thread) and its SQLite worker. Every request carries an
// id; the worker answers each exactly once with a reply of the same id, in any order (writers
// waiting for the database's write lock are answered later). Values cross the boundary by
// structured clone; SQLite handles never do.

import type { Column, ExecResult, SqlRow, SqlValue } from '../lib/sql.js';

export type { Column, ExecResult, SqlRow, SqlValue };

/** A locally committed transaction that the node must propose to raft. */
export interface CapturedWrite {
    readonly txId: number;
    readonly database: string;
    readonly entry: Uint8Array;
}

export interface WorkerOptions {
    readonly dir: string;
    readonly busyTimeoutMs: number;
    readonly checkpointFramesMin: number;
    readonly durableEveryEntries: number;
    readonly rowsPerBatch: number;
    /** Test hook: the worker exits abruptly (as a killed process would) at this point. */
    readonly crashPoint: string | undefined;
}

export type Request =
    | { op: 'start' }
    | { op: 'open'; database: string }
    | { op: 'prepare'; session: number; sql: string }
    | { op: 'exec'; session: number; stmt: number; params: SqlValue[] }
    | { op: 'query'; session: number; stmt: number; params: SqlValue[] }
    | { op: 'execSql'; session: number; sql: string; params: SqlValue[] }
    | { op: 'querySql'; session: number; sql: string; params: SqlValue[] }
    | { op: 'next'; session: number; cursor: number }
    | { op: 'endCursor'; session: number; cursor: number }
    | { op: 'finalize'; session: number; stmt: number }
    | { op: 'closeSession'; session: number }
    | { op: 'commit'; txId: number; index: number }
    | { op: 'apply'; index: number; entry: Uint8Array }
    | { op: 'advance'; index: number }
    | { op: 'leadershipLost' }
    | { op: 'sync' }
    | { op: 'checkpoint' }
    | { op: 'snapshot' }
    | { op: 'snapshotRead'; path: string; offset: number; length: number }
    | { op: 'snapshotRelease'; path: string }
    | { op: 'installBegin' }
    | { op: 'installChunk'; install: number; data: Uint8Array }
    | { op: 'installFinish'; install: number }
    | { op: 'installAbort'; install: number }
    | { op: 'inspect' }
    | { op: 'dump'; database: string }
    | { op: 'sleep'; ms: number }
    | { op: 'shutdown' };

export type RequestMessage = Request & { id: number };

/**
 * The id of a quiet request (apply, commit, advance; Fsm.postQuiet): the worker answers it only
 * with news (an error, or transactions it undid). Ordinary requests count from 1.
 */
export const QUIET_ID = 0;

/** What a SQL request answers; `captured` are proposed in order, even with an error. */
export interface SqlReply {
    readonly captured: CapturedWrite[];
    /** The newest local transaction whose effects the reply may reflect (0: none pending). */
    readonly dependsOnTx: number;
}

export interface SerializedError {
    readonly kind: 'sqlite' | 'busy' | 'notLeader' | 'closed' | 'storage' | 'decode' | 'assertion' | 'other';
    readonly message: string;
    readonly sqliteCode?: number;
    /** kind 'storage': synced data is corrupt (ERR_STORAGE_CORRUPT), not an I/O failure. */
    readonly corrupt?: boolean;
}

export type ReplyMessage =
    | { id: number; ok: true; value: unknown; captured?: CapturedWrite[] }
    | { id: number; ok: false; error: SerializedError; captured?: CapturedWrite[]; dependsOnTx?: number };

/** Per-database digest used to compare nodes: committed pages only. */
export interface DatabaseDigest {
    readonly database: string;
    readonly pageSize: number;
    readonly sizePages: number;
    readonly sha256: string;
    readonly integrity: string;
}

export interface SnapshotInfo {
    readonly path: string;
    readonly index: number;
    readonly bytes: number;
    readonly checksum: number;
}
