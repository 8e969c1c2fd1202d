// The state machine as the SQLite worker runs it: every database, every session, the
// single-writer queues, commit/apply, undo, durability, checkpoints and snapshots. Requests
// are handled one at a time, synchronously (better-sqlite3 is synchronous), except writers
// that wait in a database's queue for its write lock. See index.ts for the design notes.

import { readdirSync, closeSync, openSync, writeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AssertionError, assert } from '../lib/assert.js';
import { systemClock, TimerSet } from '../lib/clock.js';
import {
    BusyError, ClosedError, DecodeError, NotLeaderError, SqliteError, StorageError,
} from '../lib/errors.js';
import { Database } from './database.js';
import { decodeFrames } from './entry.js';
import {
    databaseNameOf, ensureDir, fsyncPath, generationDir, readDurableState, removeTree, writeDurableState,
} from './layout.js';
import type {
    CapturedWrite, ReplyMessage, Request, RequestMessage, SerializedError, SnapshotInfo, WorkerOptions,
} from './protocol.js';
import { QUIET_ID } from './protocol.js';
import { WorkerSession } from './session.js';
import { unpackSnapshot, writeSnapshot } from './snapshot.js';
import { applyUndoFile } from './undo.js';

interface Queued {
    readonly session: WorkerSession;
    readonly go: () => void;
    readonly cancel: () => void;
}

interface Install {
    readonly dir: string;
    readonly fd: number;
    offset: number;
}

export function serializeError(error: unknown): SerializedError {
    if (error instanceof SqliteError) return { kind: 'sqlite', message: error.message, sqliteCode: error.sqliteCode };
    if (error instanceof BusyError) return { kind: 'busy', message: error.message };
    if (error instanceof NotLeaderError) return { kind: 'notLeader', message: error.message };
    if (error instanceof ClosedError) return { kind: 'closed', message: error.message };
    if (error instanceof StorageError) {
        return { kind: 'storage', message: error.message, corrupt: error.code === 'ERR_STORAGE_CORRUPT' };
    }
    if (error instanceof DecodeError) return { kind: 'decode', message: error.message };
    if (error instanceof AssertionError) return { kind: 'assertion', message: error.message };
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: 'other', message };
}

export class Engine {
    private readonly databases = new Map<string, Database>();
    private readonly sessions = new Map<number, WorkerSession>();
    private readonly queues = new Map<Database, Queued[]>();
    private readonly txDatabase = new Map<number, Database>();
    private readonly installs = new Map<number, Install>();
    private readonly timers = new TimerSet(systemClock);
    private generation = 0;
    private durableIndex = 0;
    private appliedIndex = 0;
    private nextTxId = 1;
    private nextSession = 1;
    private nextFile = 1;
    private closed = false;

    constructor(private readonly options: WorkerOptions, private readonly send: (reply: ReplyMessage) => void) {}

    private readonly crash = (point: string): void => {
        if (this.options.crashPoint === point) process.exit(70);
    };

    private get genDir(): string {
        return generationDir(this.options.dir, this.generation);
    }

    handle(message: RequestMessage): void {
        const { id } = message;
        if (this.closed) {
            if (id !== QUIET_ID) this.send({ id, ok: false, error: { kind: 'closed', message: 'fsm worker closed' } });
            return;
        }
        try {
            if (this.handleSql(message)) return;
            const value = this.handleControl(message);
            // A quiet request is answered on success only when it undid transactions.
            if (id === QUIET_ID) {
                const undone = (value as { undone?: number[] } | undefined)?.undone ?? [];
                if (undone.length > 0) this.send({ id, ok: true, value: { undone } });
                return;
            }
            this.send({ id, ok: true, value });
        } catch (error) {
            this.send({ id, ok: false, error: serializeError(error) });
        }
    }

    // ---- SQL sessions --------------------------------------------------------------------

    private session(id: number): WorkerSession {
        const s = this.sessions.get(id);
        if (s === undefined) throw new ClosedError('session closed');
        return s;
    }

    /** Handles SQL requests (returns false for control requests). */
    private handleSql(m: RequestMessage): boolean {
        switch (m.op) {
            case 'open': {
                assert(m.database.length > 0 && !m.database.includes('\0'), 'bad database name');
                const s = new WorkerSession(this.nextSession++, this.database(m.database), this.options.rowsPerBatch);
                this.sessions.set(s.id, s);
                this.send({ id: m.id, ok: true, value: s.id });
                return true;
            }
            case 'prepare':
                this.sqlRequest(m.id, this.session(m.session), false, (s) => s.prepare(m.sql));
                return true;
            case 'exec': {
                const s = this.session(m.session);
                this.sqlRequest(m.id, s, s.statementMayWrite(m.stmt), (x, after) => x.exec(m.stmt, m.params, after));
                return true;
            }
            case 'query': {
                const s = this.session(m.session);
                this.sqlRequest(m.id, s, s.statementMayWrite(m.stmt), (x, after) => x.query(m.stmt, m.params, after));
                return true;
            }
            case 'execSql':
                this.sqlRequest(m.id, this.session(m.session), true, (x, after) => x.execSql(m.sql, m.params, after));
                return true;
            case 'querySql': {
                const s = this.session(m.session);
                this.sqlRequest(m.id, s, s.sqlMayWrite(m.sql), (x, after) => x.querySql(m.sql, m.params, after));
                return true;
            }
            case 'next':
                this.sqlRequest(m.id, this.session(m.session), false, (s) => s.next(m.cursor));
                return true;
            default:
                return false;
        }
    }

    private sqlRequest<T>(id: number, session: WorkerSession, mayWrite: boolean,
        fn: (s: WorkerSession, afterStatement: () => void) => T): void {
        const db = session.database;
        const go = (): void => {
            const captured: CapturedWrite[] = [];
            const wasInTransaction = session.inTransaction;
            const after = (): void => {
                if ((!mayWrite && !wasInTransaction) || session.inTransaction || db.mode !== 'sql') return;
                const w = db.capture(() => this.nextTxId++);
                if (w !== undefined) {
                    this.txDatabase.set(w.txId, db);
                    captured.push(w);
                }
            };
            try {
                const value = fn(session, after);
                this.send({ id, ok: true, value: { value, dependsOnTx: db.lastPendingTx }, captured });
            } catch (error) {
                this.send({ id, ok: false, error: serializeError(error), captured, dependsOnTx: db.lastPendingTx });
            } finally {
                this.updateWriter(session, mayWrite);
            }
        };
        if (mayWrite && db.writer !== undefined && db.writer !== session) {
            this.enqueue(db, session, go, id);
        } else {
            go();
        }
    }

    private enqueue(db: Database, session: WorkerSession, go: () => void, id: number): void {
        const queue = this.queues.get(db) ?? [];
        this.queues.set(db, queue);
        const timer = this.timers.setTimer(this.options.busyTimeoutMs, () => {
            const at = queue.indexOf(entry);
            if (at < 0) return;
            queue.splice(at, 1);
            this.send({ id, ok: false, error: { kind: 'busy', message: 'database is locked' }, captured: [] });
        });
        const entry: Queued = { session, go, cancel: () => timer.cancel() };
        queue.push(entry);
    }

    private updateWriter(session: WorkerSession, mayWrite: boolean): void {
        const db = session.database;
        if (session.inTransaction && (mayWrite || db.writer === session)) {
            db.writer = session;
        } else if (db.writer === session) {
            db.writer = undefined;
        }
        this.drain(db);
    }

    private drain(db: Database): void {
        const queue = this.queues.get(db);
        while (queue !== undefined && queue.length > 0 && db.writer === undefined) {
            const next = queue.shift() as Queued;
            next.cancel();
            next.go();
        }
    }

    private failQueues(reason: string): void {
        for (const [db, queue] of this.queues) {
            for (const q of queue.splice(0)) {
                q.cancel();
                q.go(); // the session is invalid by now: it answers NotLeaderError
            }
            this.queues.delete(db);
        }
        void reason;
    }

    // ---- control ---------------------------------------------------------------------------

    private handleControl(m: Request): unknown {
        switch (m.op) {
            case 'start': return this.start();
            case 'finalize': this.session(m.session).finalize(m.stmt); return undefined;
            case 'endCursor': this.sessions.get(m.session)?.endCursor(m.cursor); return undefined;
            case 'closeSession': return this.closeSession(m.session);
            case 'commit': return this.commit(m.txId, m.index);
            case 'apply': return this.apply(m.index, m.entry);
            case 'advance':
                this.appliedIndex = Math.max(this.appliedIndex, m.index);
                return this.maybeDurable(false);
            case 'leadershipLost': return { undone: this.undoAll('leadership lost') };
            case 'sync': this.maybeDurable(true); return { durableIndex: this.durableIndex };
            case 'checkpoint':
                return [...this.databases.values()].every((db) => db.maybeCheckpoint());
            case 'snapshot': return this.snapshot();
            case 'installBegin': return this.installBegin();
            case 'installChunk': return this.installChunk(m.install, m.data);
            case 'installFinish': return this.installFinish(m.install);
            case 'installAbort': return this.installAbort(m.install);
            case 'inspect': return this.inspect();
            case 'dump': return this.dump(m.database);
            case 'shutdown': return this.shutdown();
            case 'snapshotRead': case 'snapshotRelease': case 'sleep':
                throw new AssertionError(`op ${m.op} is handled on the main thread`);
            default:
                throw new AssertionError(`unexpected op ${m.op}`);
        }
    }

    private database(name: string): Database {
        let db = this.databases.get(name);
        if (db === undefined) {
            db = new Database(name, this.genDir, this.crash);
            this.databases.set(name, db);
        }
        return db;
    }

    /** Recovery (DESIGN.md §3.3): finish undo files, drop WAL files, forget leftovers. */
    private start(): { durableIndex: number } {
        const dir = this.options.dir;
        ensureDir(dir);
        let state = readDurableState(dir);
        if (state === undefined) {
            ensureDir(generationDir(dir, 0));
            fsyncPath(dir);
            state = { generation: 0, durableIndex: 0 };
            writeDurableState(dir, state);
        }
        this.generation = state.generation;
        this.durableIndex = state.durableIndex;
        this.appliedIndex = state.durableIndex;
        for (const name of readdirSync(dir)) {
            if (name === 'state' || name === `gen-${this.generation}`) continue;
            removeTree(join(dir, name));
        }
        const gen = this.genDir;
        ensureDir(gen);
        for (const name of readdirSync(gen)) {
            if (name.endsWith('.undo')) applyUndoFile(join(gen, name), join(gen, name.slice(0, -'.undo'.length)));
        }
        for (const name of readdirSync(gen)) {
            if (name.endsWith('-wal') || name.endsWith('-shm') || name.endsWith('.tmp')) rmSync(join(gen, name));
        }
        fsyncPath(gen);
        for (const name of readdirSync(gen)) {
            const database = databaseNameOf(name);
            if (database !== undefined) this.database(database);
        }
        return { durableIndex: this.durableIndex };
    }

    private closeSession(id: number): void {
        const s = this.sessions.get(id);
        if (s === undefined) return;
        this.sessions.delete(id);
        s.close();
        this.drain(s.database);
    }

    private commit(txId: number, index: number): unknown {
        const db = this.txDatabase.get(txId);
        assert(db !== undefined, `commit of unknown transaction ${txId}`);
        this.txDatabase.delete(txId);
        db.commit(txId);
        assert(index > this.appliedIndex, `commit index ${index} not after applied ${this.appliedIndex}`);
        this.appliedIndex = index;
        if (db.pending.length === 0 && db.walFrames >= this.options.checkpointFramesMin) db.maybeCheckpoint();
        this.maybeDurable(false);
        return undefined;
    }

    private apply(index: number, data: Uint8Array): { undone: number[] } {
        const entry = decodeFrames(data);
        assert(index > this.appliedIndex, `apply index ${index} not after applied ${this.appliedIndex}`);
        // An entry of another leader while local transactions are pending: this node lost
        // its leadership (the node should have said so first). Undo before applying.
        const hasPending = [...this.databases.values()].some((db) => db.pending.length > 0);
        const undone = hasPending ? this.undoAll('leadership lost') : [];
        this.database(entry.database).applyEntry(entry);
        this.appliedIndex = index;
        this.maybeDurable(false);
        return { undone };
    }

    private undoAll(reason: string): number[] {
        const undone: number[] = [];
        for (const db of this.databases.values()) {
            for (const tx of db.undo(reason)) {
                undone.push(tx);
                this.txDatabase.delete(tx);
            }
            db.invalidateSessions(reason);
            db.enterFileMode(reason);
        }
        this.failQueues(reason);
        return undone;
    }

    /** Records a new durable index when the database files can be made to hold the applied state. */
    private maybeDurable(force: boolean): boolean {
        if (this.appliedIndex <= this.durableIndex) return true;
        if (!force && this.appliedIndex - this.durableIndex < this.options.durableEveryEntries) return false;
        for (const db of this.databases.values()) {
            if (!db.mainIsCurrent && !db.maybeCheckpoint()) return false;
        }
        for (const db of this.databases.values()) db.syncMain();
        this.crash('durable-before-state');
        writeDurableState(this.options.dir, { generation: this.generation, durableIndex: this.appliedIndex });
        this.durableIndex = this.appliedIndex;
        return true;
    }

    private sortedDatabases(): Database[] {
        return [...this.databases.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }

    private snapshot(): SnapshotInfo {
        const path = join(this.options.dir, `snapshot-${this.appliedIndex}-${this.nextFile++}`);
        const { bytes, checksum } = writeSnapshot(path, this.appliedIndex, this.sortedDatabases());
        return { path, index: this.appliedIndex, bytes, checksum };
    }

    private installBegin(): number {
        const n = this.nextFile++;
        const dir = join(this.options.dir, `install-${n}`);
        removeTree(dir);
        ensureDir(dir);
        this.installs.set(n, { dir, fd: openSync(join(dir, 'stream'), 'w'), offset: 0 });
        return n;
    }

    private installChunk(n: number, data: Uint8Array): undefined {
        const install = this.installs.get(n);
        assert(install !== undefined, `unknown install ${n}`);
        let done = 0;
        while (done < data.length) {
            done += writeSync(install.fd, data, done, data.length - done, install.offset + done);
        }
        install.offset += data.length;
        return undefined;
    }

    private installAbort(n: number): undefined {
        const install = this.installs.get(n);
        if (install === undefined) return undefined;
        this.installs.delete(n);
        closeSync(install.fd);
        removeTree(install.dir);
        return undefined;
    }

    /**
     * Verifies the received snapshot into a new generation directory, then switches to it by
     * replacing the state file (the one atomic step), then removes the old generation.
     */
    private installFinish(n: number): { index: number; undone: number[] } {
        const install = this.installs.get(n);
        assert(install !== undefined, `unknown install ${n}`);
        this.installs.delete(n);
        closeSync(install.fd);
        const next = this.generation + 1;
        const nextDir = generationDir(this.options.dir, next);
        removeTree(nextDir);
        ensureDir(nextDir);
        let index: number;
        try {
            index = unpackSnapshot(join(install.dir, 'stream'), nextDir).index;
        } catch (error) {
            removeTree(nextDir);
            removeTree(install.dir);
            throw error;
        }
        fsyncPath(this.options.dir);
        this.crash('install-before-switch');
        const undone = this.undoAll('snapshot installed');
        for (const db of this.databases.values()) db.close('snapshot installed');
        this.databases.clear();
        const oldDir = this.genDir;
        writeDurableState(this.options.dir, { generation: next, durableIndex: index });
        this.crash('install-after-switch');
        this.generation = next;
        this.durableIndex = index;
        this.appliedIndex = index;
        removeTree(oldDir);
        removeTree(install.dir);
        for (const name of readdirSync(nextDir)) {
            const database = databaseNameOf(name);
            if (database !== undefined) this.database(database);
        }
        return { index, undone };
    }

    private inspect(): unknown {
        return {
            appliedIndex: this.appliedIndex,
            durableIndex: this.durableIndex,
            generation: this.generation,
            stats: [...this.databases.values()].reduce((sum, db) => ({
                checkpoints: sum.checkpoints + db.stats.checkpoints,
                walRestarts: sum.walRestarts + db.stats.walRestarts,
                undos: sum.undos + db.stats.undos,
            }), { checkpoints: 0, walRestarts: 0, undos: 0 }),
            databases: this.sortedDatabases().filter((db) => db.committedSizePages > 0).map((db) => db.digest()),
        };
    }

    /** The committed image of `name` as one consolidated file (DUMP), or SqliteError 1002. */
    private dump(name: string): Uint8Array {
        const db = this.databases.get(name);
        if (db === undefined || db.committedSizePages === 0) {
            throw new SqliteError(1002, 'database does not exist');
        }
        const ps = db.pageSize;
        const out = Buffer.alloc(db.committedSizePages * ps);
        db.withCommittedReader((read) => {
            for (let p = 1; p <= db.committedSizePages; p++) read(p, out.subarray((p - 1) * ps, p * ps));
        });
        return out;
    }

    private shutdown(): { undone: number[] } {
        const undone = this.undoAll('fsm closing');
        for (const s of this.sessions.values()) s.close();
        this.sessions.clear();
        for (const db of this.databases.values()) db.close('fsm closing');
        for (const install of this.installs.values()) closeSync(install.fd);
        this.installs.clear();
        this.timers.close();
        this.closed = true;
        return { undone };
    }
}
