// tqlite's SQLite state machine (src/fsm): page-level replication in a worker thread.
//
// ## Shape
// - `Fsm` (fsm.ts, main thread) owns one worker thread (worker.ts → engine.ts) that owns every
//   SQLite connection of the node (better-sqlite3, synchronous). Requests carry ids and settle
//   once; a worker error or unexpected exit moves the Fsm to `failed`, rejects every request
//   (ClosedError) and every pending write (IndeterminateError), and calls onFailure (the node
//   must stop). close() drains in-flight requests up to closeDeadlineMs, asks the worker to
//   undo what is uncommitted and close its databases, waits for its exit up to the deadline,
//   then terminate()s it. Nothing runs after close.
// - Files (layout.ts): <dir>/state (generation + durable index, replaced atomically),
//   <dir>/gen-<g>/ the databases. The worker does file I/O with synchronous calls: it is the
//   only thread touching them and blocking it never blocks the main loop.
//
// ## Message flow the node drives
//   leader write:  session.exec/execSql/query(...) runs in the worker. Each transaction that
//                  commits locally is read back from the -wal file (wal.ts) and encoded as ONE
//                  entry in dqlite's FRAMES layout (entry.ts). The Fsm calls
//                  options.propose({ txId, database, entry }) synchronously, in commit order;
//                  the node proposes `entry` to raft (if that fails: leadershipLost()).
//                  The session call resolves only after fsm.apply(index, entry) ran for it.
//   commit/apply:  for every committed COMMAND entry, in log order: fsm.apply(index, data).
//                  If `data` is the leader's oldest pending entry (same bytes) it is committed
//                  locally: its frames are already in the WAL, so the Fsm just releases it
//                  (and reads that waited for it). Otherwise it is applied as a follower does:
//                  page images written at (pgno-1)*pageSize into the main file, then truncated
//                  to the entry's size (no SQLite connection). Other entry types: advance(index).
//   reads:         a query's rows are released only once every local transaction its
//                  snapshot could include is committed (the worker reports the newest pending
//                  transaction of the database after the first batch is stepped; the session
//                  waits with waitTx). Linearizability (ReadIndex) is the node's job before it
//                  calls query.
//   leadership:    on losing leadership call leadershipLost(): sessions are closed (later
//                  calls → NotLeaderError), pending writes (and held reads) reject with
//                  IndeterminateError (10506), the database returns to committed pages. An
//                  entry from another leader arriving while writes are pending does the same
//                  first. The node must apply every entry of earlier terms (barrier) before
//                  serving writes as a new leader: pages are captured against local state.
//   durability:    start() resolves { durableIndex }: the node replays committed entries after
//                  it. The Fsm advances the durable index itself every durableEveryEntries
//                  applied entries (fsync of the database files, then the state file) when it
//                  can; sync() forces it. The log must keep every entry after durableIndex.
//   snapshots:     snapshot() → a handle (index, bytes, checksum, read(offset, length),
//                  release()); beginInstall() → write(chunk)… finish() → index. A received
//                  snapshot is verified (crc32c + PRAGMA integrity_check) in a new generation
//                  directory before one atomic rename of the state file switches to it.
//
// ## Leader and followers stay page-identical
// The leader never replicates SQL: followers get exactly the page images SQLite wrote. Page 1
// of a new database is written by `journal_mode=WAL` directly into the leader's main file,
// outside the WAL; it is never part of the committed size until the first transaction, which
// always writes page 1 through the WAL. Checkpoints are local (never replicated) and run only
// when nothing is pending: the committed image of a page is then always its newest committed
// WAL frame, else the main file — digests, snapshots and pre-images read exactly that.
//
// ## Uncommitted transactions can be undone
// Pre-images are not copied eagerly: while anything is pending no checkpoint runs, so the
// committed image of every page stays readable (committed WAL frame or main file) until the
// undo. Undo: write the undo file (committed images of every page a pending transaction wrote,
// and of every page past the smallest size a pending transaction left — a VACUUM shrinks the
// file), fsync it and its directory; close all sessions; checkpoint the whole WAL; write the
// images back and truncate to the committed size; fsync; remove the undo file. A restart
// finishes a complete undo file (crc32c) and ignores an incomplete one (the database was not
// touched yet), then deletes -wal/-shm (committed frames there are replayed from the log).
// The anchor connection holds a read transaction at all times except while checkpointing:
// otherwise closing a session would let SQLite checkpoint (uncommitted) frames on close.
//
// ## One writer per database
// SQLite's busy timeout is 0 (a wait would block the whole worker). A session with an open
// write transaction owns the database's write slot; other writers queue in the worker, in
// order, with busyTimeoutMs (then BusyError → SQLITE_BUSY). Readers never queue (WAL).
//
// ## Known limits
// - better-sqlite3 has no sqlite3_interrupt: interrupt() stops a streaming query at the next
//   batch; a single long step runs to its end (in the worker, not blocking the main loop).
// - One entry per transaction: a transaction's pages are held in memory while encoded.
// - The durable index cannot advance while writes are pending on any database.

export { Fsm, FsmSession } from './fsm.js';
export type {
    FsmOptions, Inspection, Prepared, QueryResult, RowBatches, SnapshotHandle, SnapshotInstall,
} from './fsm.js';
export type { CapturedWrite, Column, DatabaseDigest, ExecResult, SqlRow, SqlValue } from './protocol.js';
export { decodeFrames, encodeFrames, type FramesEntry } from './entry.js';
