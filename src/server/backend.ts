// What the client gateway needs from a tqlite node. The gateway (src/server) speaks dqlite's
// wire protocol; the Backend is the node behind it (src/node composes raft, the log, the peer
// transport and the SQLite worker and implements this interface). The gateway never touches
// raft, files or SQLite itself.
//
// General rules for every method:
// - Everything is asynchronous (SQL runs in the SQLite worker thread, membership changes wait
//   for raft) except connect(), which is a synchronous hand-off.
// - Failures are rejections with the classes of src/lib/errors.ts. The gateway turns them into
//   FAILURE responses with src/server/failure.ts:
//     NotLeaderError      → 10250 "not leader"       (nothing was done; the client goes elsewhere)
//     IndeterminateError  → 10506 "leadership lost"  (a write was proposed, its outcome is unknown)
//     SqliteError         → its sqliteCode and message (SQLite extended codes, or dqlite codes
//                           such as 1002 DQLITE_NOTFOUND)
//     BusyError           → 5 (SQLITE_BUSY) with the message
//     MembershipError     → 1 with the message ("server ID already in use", ...)
//     ClosedError, UnavailableError, TimeoutError → 10250 "not leader" (the node is stopping or
//                           cannot serve: the client must look for another node)
//     StorageError        → 10 (SQLITE_IOERR) "disk I/O error", and logged
//   Anything else is a bug: it is logged and answered with FAILURE 1 "internal error".
// - The gateway makes at most one call at a time on one SqlSession (dqlite's rule: one request
//   at a time per connection), and finishes or returns a RowBatches iterator before the next
//   call on that session. interrupt() and close() are the exceptions: they may come at any time.
// - When a connection ends, the gateway calls interrupt() then close() on its SqlSession, even
//   while another call of that session is still pending; a RowBatches.return() may follow
//   close(). Once the Server is closed, nothing else is called.

import type { Column, ExecResult, Prepared, QueryResult, RowBatches, SqlRow, SqlValue } from '../lib/sql.js';
import type { NodeId, Role } from '../raft/types.js';
import type { Socket } from 'node:net';

export type { NodeId, Role };

export type { Column, ExecResult, Prepared, QueryResult, RowBatches, SqlRow, SqlValue };

/**
 * One client connection's SQL session on one database: dqlite's `struct leader`. It owns a
 * SQLite connection in the worker, its prepared statements and its transaction. A transaction
 * belongs to the session; close() rolls back whatever is open.
 *
 * Leadership: every call except finalize(), interrupt() and close() requires this node to be
 * the leader (NotLeaderError otherwise). Reads see everything committed before they started
 * (a barrier or read-index round first, as the node chooses; DESIGN.md §3.5). A write resolves
 * only once its entry is committed and applied; losing leadership in between rejects with
 * IndeterminateError.
 */
export interface SqlSession {
    /**
     * Prepares the FIRST statement of `sql`. Empty SQL (only whitespace, comments, `;`) rejects
     * with SqliteError(0, "empty statement"); a syntax error with SqliteError(1, sqlite message).
     * The tail is not looked at: the gateway decides what a tail means.
     */
    prepare(sql: string): Promise<Prepared>;

    /**
     * Binds `params` (fewer than paramCount: the rest are NULL; more: SqliteError 25 "column
     * index out of range"), runs the statement to completion, then resets it and clears its
     * bindings for reuse. A statement that yields rows rejects with SqliteError(1, "rows yielded
     * when none expected for EXEC request") (dqlite ≥ 1.15). Unknown id: assertion (the gateway
     * only passes ids it got from prepare and has not finalized).
     */
    exec(id: number, params: readonly SqlValue[]): Promise<ExecResult>;

    /**
     * Binds and starts the statement. A statement that returns no rows (INSERT, ...) is run as a
     * write, as EXEC would (replicated before the promise resolves), and the result has no columns
     * and no batches (dqlite ≥ 1.15). The statement is reset when the batches end or are returned.
     */
    query(id: number, params: readonly SqlValue[]): Promise<QueryResult>;

    /** Deletes the statement. Never requires leadership. */
    finalize(id: number): Promise<void>;

    /**
     * Runs every statement of `sql` in order (dqlite HEAD semantics): the parameters are shared
     * out in order, each statement taking as many as it has placeholders; leftovers are ignored.
     * Stops at the first failure; statements already run stay applied. Empty SQL is allowed and
     * returns the current values. A row-returning statement fails as in exec().
     */
    execSql(sql: string, params: readonly SqlValue[]): Promise<ExecResult>;

    /**
     * Runs `sql`, which the gateway guarantees holds exactly one statement (it answers the
     * "nonempty statement tail" and "empty statement" cases itself), as query() does. More
     * parameters than placeholders: SqliteError(25, ...).
     */
    querySql(sql: string, params: readonly SqlValue[]): Promise<QueryResult>;

    /**
     * Best effort: stops whatever statement is running now (sqlite3_interrupt), so that a
     * pending call settles soon (a RowBatches.next() may reject with SqliteError 9 or end).
     * Never rejects; a no-op when nothing runs.
     */
    interrupt(): void;

    /**
     * Finalizes every statement, rolls back an open transaction, releases the connection.
     * Idempotent; may be called while another call is pending (that call then settles, usually
     * with ClosedError). Never rejects.
     */
    close(): Promise<void>;
}

export interface LeaderInfo {
    /** The leader as this node knows it, with its address exactly as registered in raft. */
    readonly leader: { readonly id: NodeId; readonly address: string } | undefined;
    /**
     * Whether this node is a voter in its current configuration. dqlite answers LEADER with the
     * leader only on voters; standbys and spares answer "no leader" (id 0, empty address).
     */
    readonly isVoter: boolean;
}

export interface ServerEntry {
    readonly id: NodeId;
    readonly address: string;
    readonly role: Role;
}

export interface Metadata {
    /** u64 failure domain of this node (configuration). */
    readonly failureDomain: bigint;
    /** u64 weight of this node (in memory; see setWeight). */
    readonly weight: bigint;
}

export interface DumpFile {
    readonly name: string;
    /** The bytes. Database images are a whole number of pages, so a multiple of 8. */
    readonly data: Uint8Array;
}

/** A raft peer that connected to the client port and sent CONNECT: the socket changes owner. */
export interface PeerHandoff {
    /** The peer's node id and address from the CONNECT request. */
    readonly id: NodeId;
    readonly address: string;
    /**
     * The socket, paused, with every listener the gateway added removed. From now on the peer
     * transport owns it (and must destroy it when done).
     */
    readonly socket: Socket;
    /** Bytes that arrived after the CONNECT message and were already read: raft's first bytes. */
    readonly head: Uint8Array;
}

export interface Backend {
    /** LEADER. Never requires leadership. */
    leader(): Promise<LeaderInfo>;

    /**
     * CLUSTER: every server of the current configuration (the latest one this node knows,
     * committed or not, as dqlite's raft does), in configuration order.
     */
    cluster(): Promise<readonly ServerEntry[]>;

    /** DESCRIBE: this node's failure domain and weight. Any node. */
    describe(): Promise<Metadata>;

    /** WEIGHT: sets this node's weight (in memory only, as dqlite). Any node. */
    setWeight(weight: bigint): Promise<void>;

    /**
     * ADD a new node as a spare. These four membership calls require leadership
     * (NotLeaderError) and resolve only once the configuration change is committed; a change
     * already in progress rejects with BusyError; a bad id/address with MembershipError.
     */
    add(id: NodeId, address: string): Promise<void>;
    /** ASSIGN a role to a member. */
    assign(id: NodeId, role: Role): Promise<void>;
    /** REMOVE a member. */
    remove(id: NodeId): Promise<void>;
    /**
     * TRANSFER leadership to `id` (0n: the node picks a suitable voter). Resolves once this node
     * is no longer leader; MembershipError("leadership transfer failed") otherwise.
     */
    transfer(id: NodeId): Promise<void>;

    /**
     * DUMP: the database `name` as files, in order: the database image named `name`, then the WAL
     * named `${name}-wal` (empty when the image is consolidated, as dqlite HEAD does). An unknown
     * database rejects with SqliteError(1002, "database does not exist"). Any node.
     */
    dump(name: string): Promise<readonly DumpFile[]>;

    /**
     * CONNECT: takes ownership of a raft peer's socket. Return false when this node does not
     * accept peers (the gateway then destroys the socket). Must not throw.
     */
    connect(handoff: PeerHandoff): boolean;

    /**
     * OPEN: a new SQL session on database `name` (created on first write if it does not exist).
     * May require leadership (NotLeaderError), as dqlite ≥ 1.18.2 does (1.11.1 does not). Note
     * that go-dqlite 1.11.5 does not retry a failed OPEN: its shell prints "failed to open
     * database: not leader" when leadership moved between its LEADER probe and OPEN.
     */
    open(name: string): Promise<SqlSession>;
}
