// The client gateway: a Server on the node's one address speaking dqlite's wire protocol, and
// the Backend interface the node implements for it (backend.ts documents the semantics).

export { Server, DEFAULT_LIMITS, DEFAULT_CONNECTIONS_MAX, parseAddress } from './server.js';
export type { ServerOptions } from './server.js';
export type { SessionLimits } from './session.js';
export type {
    Backend, Column, DumpFile, ExecResult, LeaderInfo, Metadata, NodeId, PeerHandoff, Prepared, QueryResult, Role,
    RowBatches, ServerEntry, SqlRow, SqlSession, SqlValue,
} from './backend.js';
export { failureOf } from './failure.js';
export type { Failure } from './failure.js';
