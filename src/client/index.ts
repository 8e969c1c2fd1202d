// tqlite/client: a TypeScript client for dqlite clusters (real dqlite or tqlite), speaking the
// dqlite wire protocol (src/wire). It never loads server code or SQLite.
//
//   const db = await connect({ servers: ['127.0.0.1:9001', ...], database: 'app' });
//   await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)');
//   await db.exec('INSERT INTO t (name) VALUES (?)', ['a']);
//   for await (const row of db.query('SELECT * FROM t')) { ... }      // batches pulled lazily
//   const rows = await db.query('SELECT * FROM t WHERE id > ?', [1]).all();
//   const stmt = await db.prepare('INSERT INTO t (name) VALUES (?)'); await stmt.exec(['b']);
//   await db.transaction(async (tx) => { await tx.exec(...); });
//   await db.close();                                                  // or: await using db = …
//
//   const admin = createAdminClient({ servers });
//   await admin.cluster(); await admin.describe('127.0.0.1:9001'); await admin.close();
//
// connect() options: servers, database, timeoutMs (30 s per call, discovery included),
// dialTimeoutMs (5 s), probeTimeoutMs (10 s), poolSize (4), safeIntegers (INTEGER always bigint;
// default: number when exact, bigint beyond 2^53, never rounded), bodyBytesMax, logger, clock,
// signal, captureCallSites. Values: see values.ts (Date binds as go-dqlite's ISO8601 text;
// DATETIME/TIMESTAMP columns come back as Date, BOOLEAN columns as boolean, BLOB as Buffer).
// Retries go to a new leader only when the request certainly did nothing (not leader, FAILURE
// 12, connection closed before sending); never inside a transaction, never after 10506 or a
// connection lost after sending (IndeterminateError).
//
// Every async method takes { signal, timeoutMs }. Errors (src/lib/errors.ts, by `code`):
//   ERR_NOT_LEADER (NotLeaderError, FAILURE 10250), ERR_LEADERSHIP_LOST (IndeterminateError,
//   FAILURE 10506 or a connection lost after sending: the outcome is unknown), ERR_SQLITE
//   (SqliteError with `sqliteCode`), ERR_TIMEOUT, ERR_ABORTED, ERR_CLOSED, ERR_UNAVAILABLE,
//   ERR_PROTOCOL, ERR_BUSY, ERR_CONFIG, ERR_INVALID_ARGUMENT.

export { connect, Database, Statement, Transaction } from './database.js';
export type { ConnectOptions, ExecResult, QueryOptions, Row } from './database.js';
export { Rows } from './rows.js';
export { AdminClient, createAdminClient } from './admin.js';
export type { AdminOptions, NodeInfo, NodeMetadata, NodeRole } from './admin.js';
export type { CallOptions } from './scope.js';
export type { SqlParameter, SqlValue } from './values.js';
export type { FileEntry } from '../wire/index.js';
export {
    AbortError, BusyError, ClosedError, ConfigError, IndeterminateError, InvalidArgumentError, NotLeaderError,
    ProtocolError, SqliteError, TimeoutError, TqliteError, UnavailableError,
} from '../lib/errors.js';
