// The state machine as the rest of the node sees it, on the main thread. It owns the SQLite
// worker (STYLE.md §7.5.10): every request carries an id and settles exactly once; a worker
// error or unexpected exit fails the Fsm and rejects everything pending; close() drains up to
// a deadline, undoes what is not committed, and terminates the worker if it does not exit.

import { Worker } from 'node:worker_threads';
import { open as openFile, rm } from 'node:fs/promises';
import { AssertionError, assert } from '../lib/assert.js';
import { systemClock, TimerSet, type Clock } from '../lib/clock.js';
import { Deferred } from '../lib/deferred.js';
import {
    BusyError, ClosedError, DecodeError, IndeterminateError, NotLeaderError, SqliteError, StorageError,
    TqliteError,
} from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { Prepared, QueryResult, RowBatches } from '../lib/sql.js';
import type {
    CapturedWrite, Column, DatabaseDigest, ExecResult, ReplyMessage, Request, RequestMessage, SerializedError,
    SnapshotInfo, SqlRow, SqlValue, WorkerOptions,
} from './protocol.js';
import { databaseNameProblem } from './layout.js';
import { QUIET_ID } from './protocol.js';
import { sqliteCodeOf } from './sqlite-codes.js';

/** SQLite's primary result code for "string or blob too big". */
const SQLITE_TOOBIG = 18;

export interface FsmOptions {
    /** The directory of the state machine's files (DESIGN.md §5: `<dataDir>/db`). */
    readonly dir: string;
    /**
     * Called synchronously, in commit order, with every locally committed write transaction.
     * The node proposes `write.entry` to raft. It throws if the proposal is refused before
     * anything was appended (not leader, a leadership transfer in progress): see abandon below.
     * It may return the proposal's outcome (resolves once the entry is committed and applied,
     * rejects if it will not be): a transaction undone by leadershipLost() then answers its
     * writer with that outcome rather than with IndeterminateError — after a handover, the next
     * leader usually commits it.
     *
     * A transaction that cannot be proposed (refused, or too large: maxEntryBytes) is already
     * committed in the local WAL, and later ones build on its pages: it is abandoned. Nothing
     * captured after it is proposed; its writer gets NotLeaderError (SQLITE_TOOBIG if too large);
     * every pending transaction is undone as at leadershipLost() (those proposed follow their
     * outcome; the others get NotLeaderError); and onAbandon() is called first, so the node can
     * hold new writes until everything it appended before is applied (the undone pages of a
     * proposed transaction come back when its entry commits).
     */
    readonly propose: (write: CapturedWrite) => Promise<unknown> | void;
    /** See propose: called when pending transactions are abandoned, before they are undone. */
    readonly onAbandon?: () => void;
    /** How long a writer waits for another session's write transaction. Default 5000 ms. */
    readonly busyTimeoutMs?: number;
    /** WAL frames after which a leader checkpoints once nothing is pending. Default 1000. */
    readonly checkpointFramesMin?: number;
    /**
     * Applied entries between durable-index updates (fsync of the database files, and on a
     * leader a checkpoint first). Default 1024; durableEveryMs also advances it.
     */
    readonly durableEveryEntries?: number;
    /** Also try to advance the durable index this often (0: never). Default 1000 ms. */
    readonly durableEveryMs?: number;
    readonly rowsPerBatch?: number;
    /** close(): how long in-flight requests may run, then how long the worker may take to exit. */
    readonly closeDeadlineMs?: number;
    readonly clock?: Clock;
    readonly logger?: Logger;
    /** Called once when the worker fails: the node must stop. */
    readonly onFailure?: (error: unknown) => void;
    /** Test hook: the worker exits abruptly at this named point (see engine.ts, database.ts). */
    readonly crashPoint?: string;
    /**
     * The largest entry one write transaction may produce (its pages in dqlite's FRAMES layout),
     * in bytes; default: no limit. A bigger one could never reach a follower (the peer
     * transport refuses frames above its frameBytesMax) and would stall every later commit, so
     * it is abandoned (see propose) and its writer gets SqliteError(SQLITE_TOOBIG).
     */
    readonly maxEntryBytes?: number;
}

export type { Prepared, QueryResult, RowBatches } from '../lib/sql.js';

export interface Inspection {
    readonly appliedIndex: number;
    readonly durableIndex: number;
    readonly generation: number;
    /** Local events since start (checkpoints, WAL restarts seen by capture, undos). */
    readonly stats: { readonly checkpoints: number; readonly walRestarts: number; readonly undos: number };
    readonly databases: readonly DatabaseDigest[];
}

/** A produced snapshot: a file read in chunks, released when sent or stored. */
export interface SnapshotHandle extends SnapshotInfo {
    read(offset: number, length: number): Promise<Uint8Array>;
    release(): Promise<void>;
}

/** A snapshot being received: write() the chunks in order, then finish() (or abort()). */
export interface SnapshotInstall {
    write(chunk: Uint8Array): Promise<void>;
    /** Verifies, switches atomically, and resolves with the snapshot's index. */
    finish(): Promise<number>;
    abort(): Promise<void>;
}

interface PendingTx {
    readonly write: CapturedWrite;
    readonly deferred: Deferred<void>;
    /** The proposal's outcome, from FsmOptions.propose. */
    outcome?: Promise<unknown>;
}

/** The outcome of a transaction that was never proposed: it did not happen, safe to retry. */
function notProposed(why: string): Promise<unknown> {
    const outcome = Promise.reject(new NotLeaderError(`not replicated: ${why}`));
    outcome.catch(() => undefined);
    return outcome;
}

/** Closes the cursor of a query result that will not be returned (other values: nothing to do). */
async function discardRows(value: unknown): Promise<void> {
    const batches = (value as Partial<QueryResult> | undefined)?.batches;
    if (batches !== undefined) await batches.return().catch(() => undefined);
}

interface SqlReplyValue<T> {
    readonly value: T;
    readonly dependsOnTx: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const QUIET_WINDOW_COUNT = 256;
const QUIET_WINDOW_BYTES = 8 * 1024 * 1024;
/**
 * How long quiet requests alone (a follower's applies, the leader's commits) may wait in the
 * outbox for company: whatever else is posted meanwhile takes them along at once. One worker
 * wake per write instead of two on the leader (the commit leaves with the next request) and a
 * few entries per wake on followers, none of it on a client's path: the worker handles requests
 * in order, so anything posted later still sees their effect.
 */
const QUIET_HOLD_MS = 5;

function toError(e: SerializedError): Error {
    switch (e.kind) {
        case 'sqlite': return new SqliteError(e.sqliteCode ?? 1, e.message);
        case 'busy': return new BusyError(e.message);
        case 'notLeader': return new NotLeaderError(e.message);
        case 'closed': return new ClosedError(e.message);
        case 'storage': return new StorageError(e.message, e.corrupt === true ? 'ERR_STORAGE_CORRUPT' : 'ERR_STORAGE');
        case 'decode': return new DecodeError(e.message);
        case 'assertion': return new AssertionError(`fsm worker: ${e.message}`);
        default: return new StorageError(`fsm worker: ${e.message}`);
    }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
    return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length)
        .equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

export class Fsm {
    private readonly lifecycle = new Lifecycle('fsm');
    private readonly options: FsmOptions;
    private readonly logger: Logger;
    private readonly timers: TimerSet;
    private readonly syncTimers: TimerSet;
    private worker: Worker | undefined;
    private exited: Deferred<void> | undefined;
    private nextId = 1;
    /**
     * Requests not yet posted, in the order they were made: they leave as one message at the
     * end of the loop turn (post), so that what one turn asks (reads from several clients, a
     * burst of applies) wakes the worker once. The worker answers a batch likewise (worker.ts).
     * Quiet requests alone wait up to QUIET_HOLD_MS (outboxHold) for others to leave with.
     */
    private outbox: RequestMessage[] = [];
    private outboxFlush: NodeJS.Immediate | undefined;
    private outboxHold: NodeJS.Timeout | undefined;
    /** Quiet requests and entry bytes since the last awaited one (postQuiet's window). */
    private quietCount = 0;
    private quietBytes = 0;
    private readonly requests = new Map<number, Deferred<ReplyMessage>>();
    /** Locally committed transactions not yet committed by raft, in commit order. */
    private readonly pendingQueue: PendingTx[] = [];
    private readonly pendingById = new Map<number, PendingTx>();
    private readonly undone = new Set<number>();
    /** Pending transactions are being abandoned: nothing captured is proposed until undone. */
    private refusingWrites = false;

    constructor(options: FsmOptions) {
        this.options = options;
        this.logger = options.logger ?? silentLogger;
        this.timers = new TimerSet(options.clock ?? systemClock);
        this.syncTimers = new TimerSet(options.clock ?? systemClock, true);
    }

    get state(): string {
        return this.lifecycle.state;
    }

    /** Transactions proposed and not yet committed (or undone). */
    get pendingCount(): number {
        return this.pendingQueue.length;
    }

    /** Starts the worker and runs recovery; resolves with the durable index (replay after it). */
    async start(): Promise<{ durableIndex: number }> {
        this.lifecycle.moveTo('opening');
        const workerData: WorkerOptions = {
            dir: this.options.dir,
            busyTimeoutMs: this.options.busyTimeoutMs ?? 5000,
            checkpointFramesMin: this.options.checkpointFramesMin ?? 1000,
            durableEveryEntries: this.options.durableEveryEntries ?? 1024,
            rowsPerBatch: this.options.rowsPerBatch ?? 256,
            crashPoint: this.options.crashPoint,
        };
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData });
        this.worker = worker;
        this.exited = new Deferred<void>();
        // A message is one reply or the replies to one batch of requests, in order (worker.ts).
        worker.on('message', (received: ReplyMessage | ReplyMessage[]) => {
            for (const reply of Array.isArray(received) ? received : [received]) this.onReply(reply);
        });
        worker.on('error', (error) => this.fail(error));
        worker.on('exit', (code) => {
            this.exited?.tryResolve();
            if (this.lifecycle.state !== 'closing' && this.lifecycle.state !== 'closed') {
                this.fail(new StorageError(`fsm worker exited with code ${code}`));
                return;
            }
            // Exited while closing: nothing will answer what is in flight; close() must not wait
            // for it (nor for the shutdown reply) until its deadlines.
            const gone = new ClosedError(`fsm worker exited with code ${code}`);
            for (const d of this.requests.values()) d.tryReject(gone);
            this.requests.clear();
        });
        const result = (await this.call({ op: 'start' }, true)) as { durableIndex: number };
        if (this.lifecycle.state === 'opening') this.lifecycle.moveTo('open');
        this.lifecycle.assertOpen();
        this.scheduleSync();
        return result;
    }

    /** Periodic durable-index attempt (followers between batches of entries, idle leaders). */
    private scheduleSync(): void {
        const everyMs = this.options.durableEveryMs ?? 1000;
        if (everyMs <= 0) return;
        this.syncTimers.setTimer(everyMs, () => {
            if (!this.lifecycle.isOpen) return;
            this.call({ op: 'sync' }).then(() => this.scheduleSync(), () => undefined);
        });
    }

    private fail(error: unknown): void {
        this.syncTimers.close();
        this.dropOutbox();
        if (!this.lifecycle.fail(error)) return;
        this.logger.error({ error: String(error) }, 'fsm worker failed');
        const closed = new ClosedError('fsm failed', { cause: error });
        for (const d of this.requests.values()) d.tryReject(closed);
        this.requests.clear();
        this.rejectPending([...this.pendingById.keys()], new IndeterminateError('fsm failed', { cause: error }));
        void this.worker?.terminate();
        this.options.onFailure?.(error);
    }

    private onReply(reply: ReplyMessage): void {
        if (this.lifecycle.state === 'closed' || this.lifecycle.state === 'failed') return;
        if (reply.id === QUIET_ID) {
            // A quiet request (postQuiet) answers only with news: an error, or undone transactions.
            if (!reply.ok) {
                this.fail(toError(reply.error));
            } else {
                const { undone } = reply.value as { undone: number[] };
                this.settleUndone(undone);
            }
            return;
        }
        const d = this.requests.get(reply.id);
        if (d === undefined) return;
        this.requests.delete(reply.id);
        for (const write of reply.captured ?? []) {
            const p: PendingTx = { write, deferred: new Deferred<void>() };
            p.deferred.promise.catch(() => undefined);
            this.pendingById.set(write.txId, p);
            // Captured after an abandoned transaction: its pages may build on it, so it must not
            // reach raft either; the undo under way takes it back too. It was never proposed.
            if (this.refusingWrites) {
                p.outcome = notProposed('an earlier transaction could not be replicated');
                continue;
            }
            const max = this.options.maxEntryBytes;
            if (max !== undefined && write.entry.length > max) {
                this.abandon(p, new SqliteError(SQLITE_TOOBIG, `transaction too large: its pages take `
                    + `${write.entry.length} bytes, more than one replicated entry may (${max})`));
                continue;
            }
            let outcome: Promise<unknown> | void;
            try {
                outcome = this.options.propose(write);
            } catch (error) {
                const reason = error instanceof NotLeaderError ? error
                    : new NotLeaderError(`not proposed: ${error instanceof Error ? error.message : String(error)}`);
                this.abandon(p, reason);
                continue;
            }
            // Only what was proposed can be matched with a committed entry (apply()).
            this.pendingQueue.push(p);
            if (outcome !== undefined) {
                outcome.catch(() => undefined); // followed only if the transaction is undone
                p.outcome = outcome;
            }
        }
        d.resolve(reply);
        // An assertion in the worker is a bug: fail-stop (STYLE.md §7.4).
        if (!reply.ok && reply.error.kind === 'assertion') this.fail(toError(reply.error));
    }

    private post(request: Request, internal = false): Promise<ReplyMessage> {
        if (!internal) this.lifecycle.assertOpen();
        const worker = this.worker;
        assert(worker !== undefined);
        const id = this.nextId++;
        const d = new Deferred<ReplyMessage>();
        this.requests.set(id, d);
        this.enqueue({ ...request, id } as RequestMessage);
        return d.promise;
    }

    private enqueue(message: RequestMessage): void {
        this.outbox.push(message);
        if (message.id === QUIET_ID) {
            if (this.outboxFlush === undefined) this.outboxHold ??= setTimeout(() => this.flushOutbox(), QUIET_HOLD_MS);
            return;
        }
        this.outboxFlush ??= setImmediate(() => this.flushOutbox());
    }

    private flushOutbox(): void {
        this.clearOutboxTimers();
        const batch = this.outbox;
        this.outbox = [];
        if (batch.length === 0 || this.lifecycle.state === 'closed' || this.lifecycle.state === 'failed') return;
        this.worker?.postMessage(batch.length === 1 ? batch[0] : batch);
    }

    /** Nothing may be posted any more (failed, or closed with the worker gone). */
    private dropOutbox(): void {
        this.clearOutboxTimers();
        this.outbox = [];
    }

    private clearOutboxTimers(): void {
        if (this.outboxFlush !== undefined) clearImmediate(this.outboxFlush);
        if (this.outboxHold !== undefined) clearTimeout(this.outboxHold);
        this.outboxFlush = undefined;
        this.outboxHold = undefined;
    }

    /**
     * Posts a request that is not answered when it succeeds (apply, commit, advance: the worker
     * handles requests in order, so whatever is posted later sees its effect). A failure fails
     * the Fsm (the node stops); undone transactions are reported. To bound what waits in the
     * worker's queue, every QUIET_WINDOW_COUNT-th request or QUIET_WINDOW_BYTES of entries is
     * an ordinary awaited call instead.
     */
    private async postQuiet(request: Request & { op: 'apply' | 'commit' | 'advance' }): Promise<void> {
        this.lifecycle.assertOpen();
        this.quietCount++;
        this.quietBytes += request.op === 'apply' ? request.entry.length : 0;
        if (this.quietCount >= QUIET_WINDOW_COUNT || this.quietBytes >= QUIET_WINDOW_BYTES) {
            this.quietCount = 0;
            this.quietBytes = 0;
            const value = await this.call(request) as { undone?: number[] } | undefined;
            this.settleUndone(value?.undone ?? []);
            return;
        }
        // Batched per loop turn like every request: a follower applying a burst of committed
        // entries (a leader committing a burst of writes) posts them to the worker as one message.
        this.enqueue({ ...request, id: QUIET_ID } as RequestMessage);
    }

    private async call(request: Request, internal = false): Promise<unknown> {
        const reply = await this.post(request, internal);
        if (!reply.ok) throw toError(reply.error);
        return reply.value;
    }

    /** Resolves when local transaction `txId` is committed; IndeterminateError if it was undone. */
    waitTx(txId: number): Promise<void> {
        if (txId === 0) return Promise.resolve();
        const p = this.pendingById.get(txId);
        if (p !== undefined) return p.deferred.promise;
        if (this.undone.has(txId)) return Promise.reject(new IndeterminateError('leadership lost: undone'));
        return Promise.resolve();
    }

    /** A captured transaction cannot be proposed: see FsmOptions.propose. */
    private abandon(p: PendingTx, reason: TqliteError): void {
        this.refusingWrites = true;
        this.logger.warn({ database: p.write.database, bytes: p.write.entry.length, reason: reason.message },
            'transaction not replicated: pending transactions are undone');
        p.deferred.tryReject(reason);
        p.outcome = Promise.reject(reason);
        p.outcome.catch(() => undefined);
        this.options.onAbandon?.();
        this.leadershipLost().catch(() => undefined).finally(() => {
            this.refusingWrites = false;
        });
    }

    /**
     * Transactions undone locally (leadership lost): their pages are gone from this node's
     * SQLite, but an entry already proposed may still commit — then it is applied here as any
     * follower applies an entry, and its writer succeeds. Each writer gets its proposal's
     * outcome: success, NotLeaderError (never appended), or IndeterminateError.
     */
    private settleUndone(txIds: readonly number[]): void {
        const following: PendingTx[] = [];
        for (const txId of txIds) {
            const p = this.pendingById.get(txId);
            if (p?.outcome !== undefined) following.push(p);
        }
        this.rejectPending(txIds, new IndeterminateError('leadership lost'), new Set(following));
        for (const p of following) {
            (p.outcome as Promise<unknown>).then(() => p.deferred.tryResolve(), (error: unknown) => {
                p.deferred.tryReject(error instanceof NotLeaderError ? error
                    : new IndeterminateError('leadership lost: outcome unknown', { cause: error }));
            });
        }
    }

    private rejectPending(txIds: readonly number[], error: TqliteError, spare?: ReadonlySet<PendingTx>): void {
        for (const txId of txIds) {
            this.undone.add(txId);
            const p = this.pendingById.get(txId);
            if (p === undefined) continue;
            this.pendingById.delete(txId);
            const at = this.pendingQueue.indexOf(p);
            if (at >= 0) this.pendingQueue.splice(at, 1);
            if (spare?.has(p) !== true) p.deferred.tryReject(error);
        }
    }

    /** A new SQL session on `database` (created on first write). The node checks leadership. */
    async open(database: string): Promise<FsmSession> {
        // A client's name, checked here: in the worker a bad name is a bug (an assertion: fail-stop).
        const problem = databaseNameProblem(database);
        if (problem !== undefined) {
            throw new SqliteError(sqliteCodeOf('SQLITE_CANTOPEN'), `cannot open database: ${problem}`);
        }
        const id = (await this.call({ op: 'open', database })) as number;
        return new FsmSession(this, id);
    }

    /**
     * Applies committed COMMAND entry `index`. On the leader, its own oldest pending
     * transaction (same bytes) becomes committed: its frames are already in the WAL, so
     * "applied" means released to clients. Anything else is applied as a follower does.
     */
    async apply(index: number, data: Uint8Array): Promise<void> {
        const head = this.pendingQueue[0];
        if (head !== undefined && sameBytes(head.write.entry, data)) {
            this.pendingQueue.shift();
            this.pendingById.delete(head.write.txId);
            // Raft committed it: the write is decided, so its writer (and every query held on
            // it) is released now, and the next entry is applied without waiting for the
            // worker's acknowledgement of 'commit' (a burst of committed entries would
            // otherwise be released one worker round trip apart). Whatever is posted to the
            // worker later (the clients' next requests, the next commits, a snapshot) is
            // handled after this 'commit': the worker handles requests in order. If 'commit'
            // fails, the Fsm fails and the node stops; the entry stays committed in the log.
            this.postQuiet({ op: 'commit', txId: head.write.txId, index }).catch((error: unknown) => this.fail(error));
            head.deferred.tryResolve();
            return;
        }
        // Resolves once posted (usually): later requests are handled after it; a transaction of
        // ours that it undoes is reported and its writer rejected when the worker says so.
        await this.postQuiet({ op: 'apply', index, entry: data });
    }

    /** A committed entry that is not a state machine command (barrier, change) was applied. */
    async advance(index: number): Promise<void> {
        await this.postQuiet({ op: 'advance', index });
    }

    /**
     * This node is no longer leader: every session is closed (later calls reject with
     * NotLeaderError), pending transactions are undone and their writers get
     * IndeterminateError. Resolves with the number of undone transactions.
     */
    async leadershipLost(): Promise<number> {
        // From now on no committed entry may be taken for one of our pending transactions: the
        // worker undoes them all before it sees any later request, so an entry that commits
        // anyway (the next leader kept it) must be applied as a follower applies it. Without
        // this, apply() could post 'commit' for a transaction already undone (nemesis seed
        // 4242: "commit of unknown transaction"). Their writers are rejected below.
        this.pendingQueue.splice(0);
        const { undone } = (await this.call({ op: 'leadershipLost' })) as { undone: number[] };
        this.settleUndone(undone);
        return undone.length;
    }

    /** Makes the applied state durable if it can (no pending transactions); resolves with the durable index. */
    async sync(): Promise<number> {
        return ((await this.call({ op: 'sync' })) as { durableIndex: number }).durableIndex;
    }

    async checkpoint(): Promise<boolean> {
        return (await this.call({ op: 'checkpoint' })) as boolean;
    }

    /** Digests and integrity of every database's committed pages (tests, `.describe`). */
    async inspect(): Promise<Inspection> {
        return (await this.call({ op: 'inspect' })) as Inspection;
    }

    /**
     * DUMP: the committed pages of `database` as one consolidated database image (the -wal of
     * a dump is always empty). Held in memory: meant for the wire's DUMP, not for huge files.
     * An unknown or empty database rejects with SqliteError(1002).
     */
    async dump(database: string): Promise<Uint8Array> {
        return (await this.call({ op: 'dump', database })) as Uint8Array;
    }

    /** A page-exact snapshot of every database at the applied index. */
    async snapshot(): Promise<SnapshotHandle> {
        const info = (await this.call({ op: 'snapshot' })) as SnapshotInfo;
        return {
            ...info,
            read: async (offset: number, length: number) => {
                const fh = await openFile(info.path, 'r');
                try {
                    const buf = Buffer.alloc(Math.max(0, Math.min(length, info.bytes - offset)));
                    let done = 0;
                    while (done < buf.length) {
                        const { bytesRead } = await fh.read(buf, done, buf.length - done, offset + done);
                        if (bytesRead === 0) break;
                        done += bytesRead;
                    }
                    return buf.subarray(0, done);
                } finally {
                    await fh.close();
                }
            },
            release: async () => rm(info.path, { force: true }),
        };
    }

    async beginInstall(): Promise<SnapshotInstall> {
        const install = (await this.call({ op: 'installBegin' })) as number;
        return {
            write: async (chunk) => {
                await this.call({ op: 'installChunk', install, data: chunk });
            },
            finish: async () => {
                const r = (await this.call({ op: 'installFinish', install })) as { index: number; undone: number[] };
                this.settleUndone(r.undone);
                return r.index;
            },
            abort: async () => {
                if (this.lifecycle.isOpen) await this.call({ op: 'installAbort', install });
            },
        };
    }

    /** @internal used by FsmSession */
    sessionCall(request: DistributiveOmit<Request, never>): Promise<ReplyMessage> {
        return this.post(request);
    }

    get isOpen(): boolean {
        return this.lifecycle.isOpen;
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.syncTimers.close();
            const deadlineMs = this.options.closeDeadlineMs ?? 5000;
            const within = <T>(p: Promise<T>): Promise<T | undefined> => new Promise((resolve) => {
                const timer = this.timers.setTimer(deadlineMs, () => resolve(undefined));
                p.then((v) => {
                    timer.cancel();
                    resolve(v);
                }, () => {
                    timer.cancel();
                    resolve(undefined);
                });
            });
            const worker = this.worker;
            if (worker !== undefined && this.exited !== undefined && !this.exited.settled) {
                await within(Promise.allSettled([...this.requests.values()].map((d) => d.promise)));
                // A worker that exited meanwhile answers nothing (the exit handler rejected the rest).
                const reply = this.exited.settled ? undefined : await within(this.post({ op: 'shutdown' }, true));
                if (reply?.ok === true) {
                    this.rejectPending((reply.value as { undone: number[] }).undone,
                        new IndeterminateError('fsm closing'));
                }
                const exited = await within(this.exited.promise.then(() => true));
                if (exited !== true) {
                    // terminate() takes effect only when the worker returns to JavaScript: a
                    // statement stepping inside SQLite runs to its end (no sqlite3_interrupt in
                    // better-sqlite3). Do not wait for it longer than the deadline, and do not
                    // let it keep the process alive.
                    worker.unref();
                    await within(worker.terminate());
                }
            }
            const closed = new ClosedError('fsm closed');
            for (const d of this.requests.values()) d.tryReject(closed);
            this.requests.clear();
            this.rejectPending([...this.pendingById.keys()], new IndeterminateError('fsm closed'));
            this.timers.close();
            // Posted with 'shutdown' above unless the worker was already gone: nothing may run now.
            this.dropOutbox();
        });
    }
}

const done = async (): Promise<IteratorResult<readonly SqlRow[], undefined>> => ({ done: true, value: undefined });

/**
 * One client session (it has the shape of src/server/backend.ts SqlSession). A write resolves
 * only once raft committed it; a query's rows are released only once every local transaction
 * its snapshot could include is committed; either rejects with IndeterminateError if that
 * transaction is undone.
 */
export class FsmSession {
    private closed = false;
    private interrupted = false;

    constructor(private readonly fsm: Fsm, readonly id: number) {}

    private async request<T>(request: Request): Promise<T> {
        if (this.closed) throw new ClosedError('session closed');
        const reply = await this.fsm.sessionCall(request);
        const captured = reply.captured ?? [];
        const lastCaptured = captured.at(-1)?.txId ?? 0;
        if (!reply.ok) {
            const wait = Math.max(lastCaptured, reply.dependsOnTx ?? 0);
            if (captured.length > 0) await this.fsm.waitTx(wait);
            throw toError(reply.error);
        }
        const value = reply.value as SqlReplyValue<T>;
        if (captured.length > 0) {
            await this.fsm.waitTx(Math.max(lastCaptured, value.dependsOnTx));
            return value.value;
        }
        // Wrote nothing (a read): it waited for other sessions' transactions its snapshot saw.
        // If one is undone with an unknown fate, this request did nothing either way: it fails
        // "not leader" (retry elsewhere), not "leadership lost" (which says a write may or may
        // not have happened). Its rows are dropped: they may show what never committed.
        try {
            await this.fsm.waitTx(value.dependsOnTx);
        } catch (error) {
            await discardRows(value.value);
            if (error instanceof ClosedError) throw error;
            throw new NotLeaderError(`the read waited for a transaction that failed: ${(error as Error).message}`);
        }
        return value.value;
    }

    prepare(sql: string): Promise<Prepared> {
        return this.request({ op: 'prepare', session: this.id, sql });
    }

    exec(id: number, params: readonly SqlValue[]): Promise<ExecResult> {
        return this.request({ op: 'exec', session: this.id, stmt: id, params: [...params] });
    }

    execSql(sql: string, params: readonly SqlValue[]): Promise<ExecResult> {
        return this.request({ op: 'execSql', session: this.id, sql, params: [...params] });
    }

    async query(id: number, params: readonly SqlValue[]): Promise<QueryResult> {
        this.interrupted = false;
        return this.rows(await this.request({ op: 'query', session: this.id, stmt: id, params: [...params] }));
    }

    async querySql(sql: string, params: readonly SqlValue[]): Promise<QueryResult> {
        this.interrupted = false;
        return this.rows(await this.request({ op: 'querySql', session: this.id, sql, params: [...params] }));
    }

    private rows(start: { columns: Column[]; rows: SqlRow[]; cursor: number }): QueryResult {
        if (start.columns.length === 0 && start.rows.length === 0 && start.cursor === 0) {
            return { columns: [], batches: { next: done, return: done } };
        }
        let first: SqlRow[] | undefined = start.rows.length > 0 ? start.rows : undefined;
        let cursor = start.cursor;
        const end = async (): Promise<IteratorResult<readonly SqlRow[], undefined>> => {
            if (cursor !== 0) {
                const c = cursor;
                cursor = 0;
                if (!this.closed && this.fsm.isOpen) {
                    await this.fsm.sessionCall({ op: 'endCursor', session: this.id, cursor: c });
                }
            }
            first = undefined;
            return { done: true, value: undefined };
        };
        const batches: RowBatches = {
            next: async () => {
                if (first !== undefined) {
                    const rows = first;
                    first = undefined;
                    return { done: false, value: rows };
                }
                if (cursor === 0) return { done: true, value: undefined };
                if (this.interrupted) {
                    await end();
                    throw new SqliteError(9, 'interrupted');
                }
                const batch = await this.request<{ rows: SqlRow[]; done: boolean }>(
                    { op: 'next', session: this.id, cursor });
                if (batch.done) cursor = 0;
                if (batch.rows.length === 0) return { done: true, value: undefined };
                return { done: false, value: batch.rows };
            },
            return: end,
        };
        return { columns: start.columns, batches };
    }

    finalize(id: number): Promise<void> {
        if (this.closed) return Promise.resolve();
        return this.fsm.sessionCall({ op: 'finalize', session: this.id, stmt: id }).then(() => undefined);
    }

    /**
     * Best effort. better-sqlite3 has no sqlite3_interrupt, so a statement that is already
     * stepping in the worker runs to the end of its batch; the next batch is refused.
     */
    interrupt(): void {
        this.interrupted = true;
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        if (!this.fsm.isOpen) return;
        try {
            await this.fsm.sessionCall({ op: 'closeSession', session: this.id });
        } catch {
            // the Fsm is closing or failed: the worker drops the session with everything else
        }
    }
}
