// One client connection of the gateway: dqlite's `struct conn` + `struct gateway`.
//
// States (one field, moved only through moveTo(), which asserts the transition):
//
//   handshake ──8 bytes, right version──▶ idle ◀──response sent── busy
//       │                                  │ ──complete request──▶ │
//       │                                  │                      ├──CONNECT──▶ handedOff
//       └───────── any state: socket 'close' ──────────────────────┴──────────▶ closed
//
// Rules this class keeps (STYLE.md §7.5, wire-protocol.md §2):
// - The Session owns its socket, its backend SqlSession and its statements. The socket's
//   'close' event is the single teardown point: every failure calls socket.destroy() and lets
//   'close' clean up once. After a CONNECT hand-off the peer transport owns the socket and the
//   session only forgets it.
// - One request at a time: a request's responses (all ROWS batches) are written before the next
//   request is read. Requests that arrive early wait in a small queue; when it is full the socket
//   is paused. The one exception is INTERRUPT while rows stream: it stops the stream early.
// - Backpressure: when socket.write() returns false the session waits for 'drain' before it
//   writes or computes anything more (a query pulls its next batch from the backend only after
//   that), so at most one message beyond the socket's high-water mark is buffered. A reader that
//   does not drain within writeStallTimeoutMs is disconnected; one that stops sending in the middle
//   of a request (while the session reads) is disconnected after readStallTimeoutMs.
// - Malformed input never throws out of this class: a frame that cannot be delimited (huge size,
//   words = 0) closes the connection; a delimited frame that does not decode is answered
//   FAILURE 1005 and the connection stays usable.
// - After 'close' nothing runs: every continuation after an await checks isActive first.

import type { Socket } from 'node:net';
import { assert } from '../lib/assert.js';
import type { Clock, Timer } from '../lib/clock.js';
import { TimerSet } from '../lib/clock.js';
import { Deferred } from '../lib/deferred.js';
import { ClosedError, DecodeError, ProtocolError, TimeoutError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { hasStatement, firstStatement } from '../lib/sql-statements.js';
import {
    FailureCode, FrameSplitter, PROTOCOL_VERSION, PROTOCOL_VERSION_LEGACY, RequestType, RoleCode, RowsWriter,
    decodeRequest, encodeResponse,
} from '../wire/index.js';
import type { Frame, Request, Response, WireValue } from '../wire/index.js';
import type { Backend, ExecResult, QueryResult, Role, SqlSession, SqlValue } from './backend.js';
import { failureOf } from './failure.js';
import { columnKind, paramValue, wireValue } from './values.js';

export interface SessionLimits {
    /** Largest request body accepted; a larger declared size closes the connection. */
    readonly messageBytesMax: number;
    /** ROWS messages are cut once they reach this many bytes (dqlite: the page size, 4096). */
    readonly rowsBatchBytes: number;
    /** Prepared statements one connection may hold at once. */
    readonly statementsMax: number;
    /** Complete requests that may wait while one runs; more pauses the socket. */
    readonly queuedRequestsMax: number;
    /** WELCOME's heartbeat timeout. */
    readonly heartbeatTimeoutMs: number;
    /** A connection that has not sent its 8-byte version by then is closed. */
    readonly handshakeTimeoutMs: number;
    /** A client that does not read its responses for this long is disconnected. */
    readonly writeStallTimeoutMs: number;
    /**
     * A client that sent part of a request and then nothing more for this long (while the session
     * reads) is disconnected: it would hold a connection slot and its partial frame's buffer.
     */
    readonly readStallTimeoutMs: number;
    /** Teardown stops waiting for the backend's SqlSession.close() after this long (and logs). */
    readonly sqlCloseTimeoutMs: number;
    /**
     * Server.close() lets each connection answer the request in progress for up to this long
     * (then closes it anyway): a write in flight during a handover gets its outcome, not a
     * lost connection. Default 4 s.
     */
    readonly closeDrainMs: number;
}

export interface SessionOptions {
    readonly backend: Backend;
    readonly limits: SessionLimits;
    readonly clock: Clock;
    readonly logger: Logger;
}

export type SessionState = 'handshake' | 'idle' | 'busy' | 'handedOff' | 'closed';

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
    handshake: ['idle', 'closed'],
    idle: ['busy', 'closed'],
    busy: ['idle', 'handedOff', 'closed'],
    handedOff: [],
    closed: [],
};

const T = RequestType;
/** Request types that accept only schema 0 (wire-protocol.md §5). */
const SCHEMA_0_ONLY: ReadonlySet<number> = new Set([T.leader, T.client, T.open, T.finalize, T.interrupt, T.add,
    T.assign, T.remove, T.dump, T.cluster, T.transfer, T.describe, T.weight]);
/** Request types that carry parameters or a tail offset: schemas 0 and 1. */
const SCHEMA_0_1: ReadonlySet<number> = new Set([T.prepare, T.exec, T.query, T.execSql, T.querySql]);
const CONNECT = T.connect;
const INTERRUPT = T.interrupt;
const HIGHEST_REQUEST = T.weight;

const ROLE_CODES: Record<Role, number> = RoleCode;
const ROLES_BY_CODE: readonly Role[] = ['voter', 'standby', 'spare'];

function reply(response: Response): Buffer {
    return encodeResponse(response);
}

function failure(code: number, message: string): Buffer {
    return encodeResponse({ kind: 'failure', code, message });
}

const EMPTY = (): Buffer => encodeResponse({ kind: 'empty' });

function resultReply(result: ExecResult): Buffer {
    // The wire carries the rowid as i64; a backend may hand it over as its unsigned 64-bit
    // pattern (two's complement), so a negative rowid is normalised rather than refused.
    const lastInsertId = BigInt.asIntN(64, result.lastInsertId);
    return encodeResponse({ kind: 'result', lastInsertId, rowsAffected: result.rowsAffected });
}

/** A reply that ends the request early with a FAILURE. */
class Reply extends Error {
    constructor(readonly code: number, message: string) {
        super(message);
    }
}

export class Session {
    private current: SessionState = 'handshake';
    private readonly socket: Socket;
    private readonly backend: Backend;
    private readonly limits: SessionLimits;
    private readonly logger: Logger;
    private readonly timers: TimerSet;
    private readonly clock: Clock;
    private readonly splitter: FrameSplitter;
    private readonly queue: Frame[] = [];
    private isLegacy = false;
    private inputEnded = false;
    /** finishAndEnd() was called: requests are answered "not leader"; the connection ends when idle. */
    private closing = false;
    /** The connection was ended (FIN sent once the last response is flushed): input is ignored. */
    private ended = false;
    private connectSeen = false;
    private sql: SqlSession | undefined;
    /** Wire statement id → backend statement handle and parameter count. */
    private readonly statements = new Map<number, { id: number; paramCount: number }>();
    /** Set while rows stream, so that an INTERRUPT can stop the stream. */
    private streaming: { interrupted: boolean } | undefined;
    private drainWaiter: Deferred<boolean> | undefined;
    private handshakeTimer: Timer | undefined;
    private readStallTimer: Timer | undefined;
    private readonly done = new Deferred<void>();

    constructor(socket: Socket, options: SessionOptions) {
        this.socket = socket;
        this.backend = options.backend;
        this.limits = options.limits;
        this.logger = options.logger;
        this.clock = options.clock;
        this.timers = new TimerSet(options.clock);
        this.splitter = new FrameSplitter({ bodyBytesMax: options.limits.messageBytesMax, handshake: true });
        socket.setNoDelay(true);
        socket.on('data', this.onData);
        socket.on('end', this.onEnd);
        socket.on('drain', this.onDrain);
        socket.on('error', this.onError);
        socket.on('close', this.onClose);
        this.handshakeTimer = this.timers.setTimer(this.limits.handshakeTimeoutMs, () => {
            if (this.current === 'handshake') socket.destroy(new TimeoutError('no handshake'));
        });
    }

    get state(): SessionState {
        return this.current;
    }

    /** True while a response waits for the client to read (socket 'drain'). */
    get isAwaitingDrain(): boolean {
        return this.drainWaiter !== undefined;
    }

    /** Resolves once the session is over: torn down after 'close', or handed off. */
    get finished(): Promise<void> {
        return this.done.promise;
    }

    /**
     * Server.close(), first step: the request in progress (if any) runs to its answer; requests
     * queued behind it or arriving meanwhile are answered "not leader" (ClosedError) without
     * running, so a client learns that they did not happen and retries elsewhere; then the
     * connection ends (FIN after the last response). The server destroy()s what has not
     * finished within its drain bound.
     */
    finishAndEnd(): void {
        if (!this.isActive) return;
        if (this.current === 'handshake') {
            this.socket.destroy();
            return;
        }
        this.closing = true;
        this.pump();
    }

    /** Ends the connection once the last response is flushed (not waiting for the client's FIN). */
    private endConnection(): void {
        if (this.ended) return;
        this.ended = true;
        this.socket.end(() => this.socket.destroy());
    }

    /** Closes the connection (Server.close); teardown happens in 'close'. */
    destroy(): void {
        if (this.current === 'closed' || this.current === 'handedOff') return;
        this.socket.destroy();
    }

    private moveTo(next: SessionState): void {
        assert(ALLOWED[this.current].includes(next), `session: ${this.current} → ${next} not allowed`);
        this.current = next;
    }

    private get isActive(): boolean {
        return this.current !== 'closed' && this.current !== 'handedOff';
    }

    // ---- socket events (each starts with the state check) ----

    private readonly onData = (chunk: Buffer): void => {
        if (!this.isActive || this.ended) return;
        this.splitter.push(chunk);
        if (this.current === 'handshake') {
            const version = this.splitter.handshake();
            if (version === undefined) return;
            if (version !== PROTOCOL_VERSION && version !== PROTOCOL_VERSION_LEGACY) {
                // dqlite closes without a word; so do we.
                this.socket.destroy();
                return;
            }
            this.isLegacy = version === PROTOCOL_VERSION_LEGACY;
            this.handshakeTimer?.cancel();
            this.moveTo('idle');
        }
        try {
            while (!this.connectSeen) {
                const frame = this.splitter.next();
                if (frame === undefined) break;
                this.queue.push(frame);
                // After CONNECT the bytes are raft's, not requests: stop splitting them.
                if (frame.type === CONNECT) {
                    this.connectSeen = true;
                    this.socket.pause();
                }
            }
        } catch (error) {
            // A header that cannot be trusted (words = 0, a size over the limit): the stream
            // can no longer be delimited, so the connection ends.
            this.logger.debug({ error }, 'unreadable frame: closing the connection');
            this.socket.destroy();
            return;
        }
        if (this.queue.length >= this.limits.queuedRequestsMax) this.socket.pause();
        this.noticeInterrupt();
        this.pump();
        this.watchReadStall();
    };

    /**
     * (Re)starts the read-stall deadline when part of a request is buffered and the session is
     * reading (not paused by a full queue, not handed off); otherwise stops it. Each chunk restarts
     * it: a slow client that keeps sending is not cut off.
     */
    private watchReadStall(): void {
        this.readStallTimer?.cancel();
        this.readStallTimer = undefined;
        if (!this.isActive || this.connectSeen || this.socket.isPaused() || this.splitter.bufferedBytes === 0) return;
        const ms = this.limits.readStallTimeoutMs;
        this.readStallTimer = this.timers.setTimer(ms, () => {
            this.readStallTimer = undefined;
            if (this.isActive) this.socket.destroy(new TimeoutError(`no byte of a partial request for ${ms} ms`));
        });
    }

    private readonly onEnd = (): void => {
        // The client half-closed: answer what it already sent, then close our side.
        if (this.current === 'handshake') {
            this.socket.destroy();
            return;
        }
        this.inputEnded = true;
        this.maybeFinishInput();
    };

    private readonly onDrain = (): void => {
        const waiter = this.drainWaiter;
        this.drainWaiter = undefined;
        waiter?.resolve(true);
    };

    private readonly onError = (error: Error): void => {
        // 'close' follows and tears down; errors of a client socket are routine.
        this.logger.debug({ error }, 'client socket error');
    };

    private readonly onClose = (): void => {
        if (!this.isActive) return;
        this.moveTo('closed');
        void this.teardown();
    };

    private async teardown(): Promise<void> {
        this.timers.close();
        const waiter = this.drainWaiter;
        this.drainWaiter = undefined;
        waiter?.resolve(false);
        this.queue.length = 0;
        this.statements.clear();
        const sql = this.sql;
        this.sql = undefined;
        try {
            if (sql !== undefined) {
                sql.interrupt();
                // A backend that never finishes closing must not keep Server.close() waiting forever.
                let timer: Timer | undefined;
                const late = new Promise<void>((resolve) => {
                    timer = this.clock.setTimer(this.limits.sqlCloseTimeoutMs, () => {
                        this.logger.error({}, 'SQL session did not close in time');
                        resolve();
                    });
                });
                await Promise.race([sql.close(), late]);
                timer?.cancel();
            }
        } catch (error) {
            this.logger.error({ error }, 'closing the SQL session failed');
        } finally {
            this.done.resolve();
        }
    }

    // ---- request loop ----

    private pump(): void {
        if (this.current !== 'idle' || this.ended) return;
        const frame = this.queue.shift();
        if (frame === undefined && this.closing) {
            this.endConnection();
            return;
        }
        if (frame === undefined) {
            if (this.socket.isPaused() && !this.connectSeen) {
                this.socket.resume();
                this.watchReadStall();
            }
            this.maybeFinishInput();
            return;
        }
        if (this.queue.length < this.limits.queuedRequestsMax && this.socket.isPaused() && !this.connectSeen) {
            this.socket.resume();
            this.watchReadStall();
        }
        this.moveTo('busy');
        this.handle(frame).then(() => {
            if (this.current !== 'busy') return;
            this.moveTo('idle');
            this.pump();
        }).catch((error: unknown) => {
            // handle() does not throw; if it ever does, this connection ends, not the process.
            this.logger.error({ error }, 'request handling failed');
            this.socket.destroy();
        });
    }

    private maybeFinishInput(): void {
        if (this.inputEnded && this.current === 'idle' && this.queue.length === 0) this.socket.end();
    }

    /** An INTERRUPT that arrives while rows stream stops the stream (§8.6: a faster server may). */
    private noticeInterrupt(): void {
        const stream = this.streaming;
        if (stream === undefined || stream.interrupted) return;
        const next = this.queue[0];
        if (next === undefined || next.type !== INTERRUPT) return;
        stream.interrupted = true;
        this.sql?.interrupt();
    }

    /** Handles one request; never throws. */
    private async handle(frame: Frame): Promise<void> {
        if (frame.type === CONNECT) {
            // Whatever follows a CONNECT is raft's stream, never requests: unless the socket was
            // handed off, the connection cannot go on.
            try {
                this.checkSchema(frame);
                const request = this.decode(frame);
                if (request.kind === 'connect') this.handleConnect(request.id, request.address);
            } catch (error) {
                this.logger.debug({ error }, 'bad CONNECT');
            }
            if (this.isActive) this.socket.destroy();
            return;
        }
        try {
            if (this.closing) throw new ClosedError('the server is closing');
            await this.dispatch(frame);
        } catch (error) {
            if (!this.isActive) return;
            const answer = error instanceof Reply
                ? { code: error.code, message: error.message, internal: false }
                : failureOf(error);
            if (answer.internal) this.logger.error({ error, type: frame.type }, 'request failed unexpectedly');
            // Text fields cannot hold NUL; an odd backend message must not break the reply.
            await this.send(failure(answer.code, answer.message.replace(/\0/g, '')));
        }
    }

    private checkSchema(frame: Frame): void {
        if (SCHEMA_0_ONLY.has(frame.type) && frame.schema !== 0) {
            throw new Reply(FailureCode.dqliteParse, 'unrecognized schema version');
        }
        if (SCHEMA_0_1.has(frame.type) && frame.schema > 1) {
            throw new Reply(FailureCode.error, 'unrecognized schema version');
        }
    }

    private decode(frame: Frame): Request {
        try {
            return decodeRequest(frame);
        } catch (error) {
            if (error instanceof DecodeError || error instanceof ProtocolError) {
                throw new Reply(FailureCode.dqliteParse, `malformed request: ${error.message}`);
            }
            throw error;
        }
    }

    private async dispatch(frame: Frame): Promise<void> {
        if (frame.type > HIGHEST_REQUEST || frame.type === T.heartbeat) {
            // HEARTBEAT (2) is implemented by no server; unknown types are read and refused.
            throw new Reply(FailureCode.dqliteParse, 'unrecognized request type');
        }
        this.checkSchema(frame);
        const request = this.decode(frame);
        switch (request.kind) {
            case 'leader': return this.handleLeader();
            case 'client':
                await this.send(reply({ kind: 'welcome', heartbeatTimeoutMs: this.limits.heartbeatTimeoutMs }));
                return;
            case 'heartbeat': throw new Reply(FailureCode.dqliteParse, 'unrecognized request type');
            case 'open': return this.handleOpen(request.name);
            case 'prepare': return this.handlePrepare(request.db, request.sql, frame.schema);
            case 'exec': return this.handleExec(request.db, request.stmt, request.params);
            case 'query': return this.handleQuery(request.db, request.stmt, request.params);
            case 'finalize': return this.handleFinalize(request.db, request.stmt);
            case 'execSql': return this.handleExecSql(request.db, request.sql, request.params);
            case 'querySql': return this.handleQuerySql(request.db, request.sql, request.params);
            case 'interrupt': return void (await this.send(EMPTY()));
            case 'connect': return; // handled in handle()
            case 'add':
                await this.backend.add(request.id, request.address);
                return void (await this.send(EMPTY()));
            case 'assign': return this.handleAssign(request.id, request.role);
            case 'remove':
                await this.backend.remove(request.id);
                return void (await this.send(EMPTY()));
            case 'dump':
                return void (await this.send(reply({ kind: 'files', files: await this.backend.dump(request.name) })));
            case 'cluster': return this.handleCluster(request.format);
            case 'transfer':
                await this.backend.transfer(request.id);
                return void (await this.send(EMPTY()));
            case 'describe': return this.handleDescribe(request.format);
            case 'weight':
                await this.backend.setWeight(request.weight);
                return void (await this.send(EMPTY()));
        }
    }

    // ---- node requests ----

    private async handleLeader(): Promise<void> {
        const info = await this.backend.leader();
        const leader = info.isVoter ? info.leader : undefined;
        if (this.isLegacy) {
            await this.send(reply({ kind: 'serverLegacy', address: leader?.address ?? '' }));
        } else {
            await this.send(reply({ kind: 'server', id: leader?.id ?? 0n, address: leader?.address ?? '' }));
        }
    }

    private async handleAssign(id: bigint, role: number | undefined): Promise<void> {
        // One body word is the old PROMOTE (voter). dqlite turns unknown codes into standby (§12).
        const name = role === undefined ? 'voter' : ROLES_BY_CODE[role];
        if (name === undefined) throw new Reply(FailureCode.dqliteParse, 'unrecognized role');
        await this.backend.assign(id, name);
        await this.send(EMPTY());
    }

    private async handleCluster(format: bigint): Promise<void> {
        if (format !== 0n && format !== 1n) throw new Reply(FailureCode.dqliteParse, 'unrecognized cluster format');
        const servers = (await this.backend.cluster()).map((s) => format === 1n
            ? { id: s.id, address: s.address, role: ROLE_CODES[s.role] }
            : { id: s.id, address: s.address });
        await this.send(reply({ kind: 'servers', servers }));
    }

    private async handleDescribe(format: bigint): Promise<void> {
        // dqlite sends this FAILURE and then a METADATA too (§12); one reply is right.
        if (format !== 0n) throw new Reply(FailureCode.protocol, 'bad format version');
        const metadata = await this.backend.describe();
        await this.send(reply({ kind: 'metadata', failureDomain: metadata.failureDomain, weight: metadata.weight }));
    }

    private handleConnect(id: bigint, address: string): void {
        if (this.sql !== undefined || this.statements.size > 0) {
            // Raft peers send CONNECT first; on a client connection it is a protocol violation.
            this.socket.destroy();
            return;
        }
        // Everything after the CONNECT message belongs to raft; onData stopped splitting there.
        assert(this.queue.length === 0, 'requests queued behind CONNECT');
        const head = this.splitter.takeBuffered();
        this.moveTo('handedOff');
        this.timers.close();
        const socket = this.socket;
        socket.pause();
        socket.off('data', this.onData);
        socket.off('end', this.onEnd);
        socket.off('drain', this.onDrain);
        socket.off('error', this.onError);
        socket.off('close', this.onClose);
        this.done.resolve();
        let accepted = false;
        try {
            accepted = this.backend.connect({ id, address, socket, head });
        } catch (error) {
            this.logger.error({ error }, 'peer hand-off threw');
        }
        if (!accepted) socket.destroy();
    }

    // ---- SQL requests ----

    private async handleOpen(name: string): Promise<void> {
        if (this.sql !== undefined) throw new Reply(FailureCode.busy, 'a database for this connection is already open');
        const sql = await this.backend.open(name);
        if (!this.isActive) {
            await sql.close();
            return;
        }
        this.sql = sql;
        await this.send(reply({ kind: 'db', id: 0 }));
    }

    private requireDb(db: number | bigint): SqlSession {
        if (this.sql === undefined || BigInt(db) !== 0n) throw new Reply(FailureCode.notFound, 'no database opened');
        return this.sql;
    }

    private lookup(stmt: number): { id: number; paramCount: number } {
        const entry = this.statements.get(stmt);
        if (entry === undefined) throw new Reply(FailureCode.notFound, 'no statement with the given id');
        return entry;
    }

    private params(wire: readonly WireValue[]): SqlValue[] {
        const values: SqlValue[] = [];
        for (const p of wire) {
            const value = paramValue(p);
            if (value === undefined) throw new Reply(FailureCode.error, 'bind parameters');
            values.push(value);
        }
        return values;
    }

    private async handlePrepare(db: number | bigint, text: string, schema: number): Promise<void> {
        const sql = this.requireDb(db);
        if (this.statements.size >= this.limits.statementsMax) {
            throw new Reply(FailureCode.error, 'too many prepared statements');
        }
        const prepared = await sql.prepare(text);
        if (!this.isActive) return;
        if (schema === 0) {
            const tail = Buffer.from(text, 'utf8').subarray(prepared.tailOffset).toString('utf8');
            if (hasStatement(tail)) {
                await sql.finalize(prepared.id);
                throw new Reply(FailureCode.error, 'nonempty statement tail');
            }
        }
        let id = 0;
        while (this.statements.has(id)) id++;
        this.statements.set(id, { id: prepared.id, paramCount: prepared.paramCount });
        const stmt = { kind: 'stmt', db: 0, id, params: prepared.paramCount } as const;
        await this.send(reply(schema === 0 ? stmt : { ...stmt, tailOffset: prepared.tailOffset }));
    }

    private async handleExec(db: number, stmt: number, params: readonly WireValue[]): Promise<void> {
        const sql = this.requireDb(db);
        const entry = this.lookup(stmt);
        const result = await sql.exec(entry.id, this.params(params));
        await this.send(resultReply(result));
    }

    private async handleQuery(db: number, stmt: number, params: readonly WireValue[]): Promise<void> {
        const sql = this.requireDb(db);
        const entry = this.lookup(stmt);
        await this.streamRows(await sql.query(entry.id, this.params(params)));
    }

    private async handleFinalize(db: number, stmt: number): Promise<void> {
        const sql = this.requireDb(db);
        const entry = this.lookup(stmt);
        // Forget the id first: whatever happens next, it no longer names a statement.
        this.statements.delete(stmt);
        await sql.finalize(entry.id);
        await this.send(EMPTY());
    }

    private async handleExecSql(db: number | bigint, text: string, params: readonly WireValue[]): Promise<void> {
        const sql = this.requireDb(db);
        const result = await sql.execSql(text, this.params(params));
        await this.send(resultReply(result));
    }

    private async handleQuerySql(db: number | bigint, text: string, params: readonly WireValue[]): Promise<void> {
        const sql = this.requireDb(db);
        const span = firstStatement(text);
        if (span === undefined) throw new Reply(FailureCode.emptyStatement, 'empty statement');
        if (hasStatement(text, span.end)) throw new Reply(FailureCode.error, 'nonempty statement tail');
        await this.streamRows(await sql.querySql(text, this.params(params)));
    }

    /**
     * Sends the rows as ROWS messages of about rowsBatchBytes, each ending with PART, the last
     * with DONE. A failure while stepping is sent as a FAILURE of its own (never behind a partial
     * ROWS prefix, §12). An INTERRUPT ends the stream with DONE, then is answered EMPTY.
     */
    private async streamRows(result: QueryResult): Promise<void> {
        const batches = result.batches;
        if (!this.isActive) {
            await batches.return().catch(() => undefined);
            return;
        }
        const names = result.columns.map((c) => c.name);
        const kinds = result.columns.map(columnKind);
        const stream = { interrupted: false };
        this.streaming = stream;
        let finished = false;
        try {
            let writer = new RowsWriter(names);
            this.noticeInterrupt();
            pull: while (!stream.interrupted) {
                let next: IteratorResult<readonly (readonly SqlValue[])[], undefined>;
                try {
                    next = await batches.next();
                } catch (error) {
                    if (stream.interrupted) break;
                    throw error;
                }
                if (!this.isActive) return;
                if (next.done === true) {
                    finished = true;
                    break;
                }
                for (const row of next.value) {
                    if (writer.bytes >= this.limits.rowsBatchBytes && writer.rows > 0) {
                        if (!(await this.send(writer.finish(false)))) return;
                        writer = new RowsWriter(names);
                        // The rest of this backend batch is dropped: the client asked to stop.
                        if (stream.interrupted) break pull;
                    }
                    assert(row.length === kinds.length, 'row width differs from the column count');
                    writer.add(row.map((value, i) => wireValue(value, kinds[i] ?? 'plain')));
                }
            }
            if (!(await this.send(writer.finish(true)))) return;
        } finally {
            this.streaming = undefined;
            if (!finished) {
                await batches.return().catch((error: unknown) => {
                    this.logger.error({ error }, 'ending a row stream failed');
                });
            }
        }
        if (stream.interrupted && this.isActive) {
            const interrupt = this.queue.shift();
            assert(interrupt !== undefined && interrupt.type === INTERRUPT);
            await this.send(EMPTY());
        }
    }

    // ---- output ----

    /**
     * Writes one message. Resolves true once the socket can take more (immediately, or after
     * 'drain'), false if the connection closed first. A reader stalled for writeStallTimeoutMs
     * is disconnected.
     */
    private send(bytes: Uint8Array): Promise<boolean> {
        if (!this.isActive) return Promise.resolve(false);
        if (this.socket.write(bytes)) return Promise.resolve(true);
        assert(this.drainWaiter === undefined, 'two writers waiting for drain');
        const waiter = new Deferred<boolean>();
        this.drainWaiter = waiter;
        const timer = this.timers.setTimer(this.limits.writeStallTimeoutMs, () => {
            this.socket.destroy(new TimeoutError('client stopped reading'));
        });
        return waiter.promise.finally(() => timer.cancel());
    }
}
