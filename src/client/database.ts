// The public SQL client: connect() → Database with exec, query, prepare and transaction.
//
// Connections: a small pool of connections to the leader, each with the database open; one
// call (or one row stream being read, or one transaction) uses one connection at a time.
//
// Retries (only where the request certainly did nothing): a call that gets "not leader"
// (FAILURE 10250/8202) or FAILURE 12 (no database / no such statement on this connection), or
// that finds its connection closed before sending, is retried on a new connection (after
// rediscovery for "not leader"), with backoff, until its deadline. Never retried: anything inside a
// transaction (the transaction belongs to the old connection), COMMIT, a query after its first
// batch, and any request whose connection was lost after it was sent or that got "leadership
// lost" (10506): those may have been applied and reject with IndeterminateError.
//
// Lifecycle: open → closing → closed. close() is idempotent, rejects calls in progress with
// ClosedError, closes every connection and cancels every timer (all unref'd); nothing runs after.

import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { systemClock, TimerSet } from '../lib/clock.js';
import type { Clock } from '../lib/clock.js';
import {
    BusyError, ClosedError, ConfigError, InvalidArgumentError, NotLeaderError, SqliteError, UnavailableError,
} from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger } from '../lib/logger.js';
import type { Logger } from '../lib/logger.js';
import { DEFAULT_BODY_BYTES_MAX, FailureCode } from '../wire/index.js';
import type { WireValue } from '../wire/index.js';
import type { Connection } from './connection.js';
import { Connector } from './connector.js';
import { Pool } from './pool.js';
import { Rows } from './rows.js';
import type { HeldConnection, QueryOptions, Row, RowsSource } from './rows.js';
import { ScopeOwner, sleep } from './scope.js';
import type { CallOptions, CallScope } from './scope.js';
import { checkSql, integerValue, toWireParams } from './values.js';
import type { SqlParameter } from './values.js';

export interface ConnectOptions {
    /** Node addresses ("host:port"); any node will do, the leader is found from there. */
    readonly servers: readonly string[];
    /** The database name sent with OPEN. */
    readonly database: string;
    /** Default deadline of every call, leader discovery included. Default 30 s. */
    readonly timeoutMs?: number;
    /** Deadline of one dial. Default 5 s. */
    readonly dialTimeoutMs?: number;
    /** Deadline of probing one node for the leader. Default 10 s. */
    readonly probeTimeoutMs?: number;
    /** Connections to the leader kept at most. Default 4. */
    readonly poolSize?: number;
    /** INTEGER values (and RESULT ids/counts) always as bigint; default: number when exact. */
    readonly safeIntegers?: boolean;
    /** Largest response body accepted. Default 128 MiB. */
    readonly bodyBytesMax?: number;
    readonly logger?: Logger;
    readonly clock?: Clock;
    /** Cancels connect() itself. */
    readonly signal?: AbortSignal;
    /**
     * Dial the nodes over TLS with these options (node:tls). For go-dqlite's (mutual) cluster
     * TLS: `{ cert, key, ca }` with the cluster certificate, key and CA.
     */
    readonly tls?: TlsConnectionOptions;
    /** Debug: append the stack of each call's call site to the stack of its errors. */
    readonly captureCallSites?: boolean;
}

/** RESULT of EXEC / EXEC_SQL: the connection's state after the last statement. */
export interface ExecResult {
    /** The connection's last insert rowid (kept across statements, as SQLite does). */
    readonly lastInsertId: number | bigint;
    /** Rows changed by the most recent INSERT, UPDATE or DELETE. */
    readonly rowsAffected: number | bigint;
}

export type { Row, QueryOptions };

/** Retry back-off after "not leader": 100 ms doubling, capped at 250 ms (as discovery). */
function retryDelayMs(attempt: number): number {
    return Math.min(100 * 2 ** attempt, 250);
}

/** Errors after which the request certainly did nothing, so it may go to a new leader. */
function isRetrySafe(error: unknown): boolean {
    return error instanceof NotLeaderError || error instanceof UnavailableError || isStaleConnection(error);
}

/**
 * FAILURE 12 ("no database opened", "no statement with the given id") refuses the request before
 * it runs; go-dqlite treats it as a bad connection because it can follow a leadership change.
 * The connection is dropped and the call retried on a fresh one (statements are re-prepared).
 */
function isStaleConnection(error: unknown): boolean {
    return error instanceof SqliteError && error.sqliteCode === FailureCode.notFound;
}

const PARAMETERS_MAX = 32766;

function wireParams(params: readonly SqlParameter[] | undefined): WireValue[] {
    const values = toWireParams(params);
    // More than 255 go with schema 1, which needs dqlite ≥ 1.12 (1.11 answers FAILURE 1005).
    // SQLite's own default limit of host parameters is 32766.
    if (values.length > PARAMETERS_MAX) throw new InvalidArgumentError(`too many parameters (${values.length})`);
    return values;
}

function toExecResult(result: { lastInsertId: bigint; rowsAffected: bigint }, safe: boolean): ExecResult {
    return {
        lastInsertId: integerValue(result.lastInsertId, safe),
        rowsAffected: integerValue(result.rowsAffected, safe),
    };
}

function validate(options: ConnectOptions): void {
    if (!Array.isArray(options.servers) || options.servers.length === 0) {
        throw new ConfigError('servers must list at least one node address');
    }
    if (typeof options.database !== 'string' || options.database === '' || options.database.includes('\0')) {
        throw new ConfigError('database must be a non-empty name');
    }
    for (const [name, value] of Object.entries({
        timeoutMs: options.timeoutMs, dialTimeoutMs: options.dialTimeoutMs, probeTimeoutMs: options.probeTimeoutMs,
        poolSize: options.poolSize, bodyBytesMax: options.bodyBytesMax,
    })) {
        if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
            throw new ConfigError(`${name} must be a positive integer`);
        }
    }
}

/** Connects to the cluster's leader and opens `database`; rejects if no leader is found in time. */
export async function connect(options: ConnectOptions): Promise<Database> {
    validate(options);
    const db = new Database(options);
    try {
        await db.ping({ ...(options.signal === undefined ? {} : { signal: options.signal }) });
    } catch (error) {
        await db.close();
        throw error;
    }
    return db;
}

/** Shared by Database and Transaction: exec, query and prepare over some way to get a connection. */
interface Runner extends RowsSource {
    /** Runs `op` on a connection, retrying where safe (Database) or not at all (Transaction). */
    call<T>(options: CallOptions | undefined, op: (c: Connection, scope: CallScope) => Promise<T>): Promise<T>;
    /** A statement id on `connection` is no longer needed. */
    dropStatement(connection: Connection, id: number): Promise<void>;
}

abstract class Executor {
    protected abstract readonly runner: Runner;

    /** Runs SQL (one or more statements) with EXEC_SQL; for statements that return no rows. */
    async exec(sql: string, params?: readonly SqlParameter[], options?: CallOptions): Promise<ExecResult> {
        const text = checkSql(sql);
        const values = wireParams(params);
        return this.runner.call(options, async (c, scope) => {
            const request = { kind: 'execSql', db: 0n, sql: text, params: values } as const;
            const result = await c.request(request, 'result', scope.signal);
            return toExecResult(result, this.runner.safeIntegers);
        });
    }

    /**
     * Runs one row-returning statement with QUERY_SQL. The result is an async iterator that
     * reads batches as you iterate (break to stop early); `.all()` collects every row. Nothing
     * is sent until the first row is asked for. Use exec() for writes: dqlite 1.11 answers a
     * write sent as a query with FAILURE 1 "not an error" and does not run it.
     */
    query<R = Row>(sql: string, params?: readonly SqlParameter[], options?: QueryOptions): Rows<R> {
        const text = checkSql(sql);
        const values = wireParams(params);
        return new Rows<R>(this.runner, async () => ({ kind: 'querySql', db: 0n, sql: text, params: values }), options);
    }

    /** Prepares `sql` (its first statement) and returns a Statement to run it many times. */
    async prepare(sql: string, options?: CallOptions): Promise<Statement> {
        const statement = new Statement(this.runner, checkSql(sql));
        await this.runner.call(options, (c, scope) => statement.idOn(c, scope));
        return statement;
    }
}

/** A prepared statement. It is prepared lazily on each pooled connection that runs it. */
export class Statement {
    private readonly ids = new Map<Connection, number>();
    private finalized = false;
    private parameters = 0;

    constructor(private readonly runner: Runner, readonly sql: string) {}

    /** The number of parameters, as the server counted them. */
    get paramCount(): number {
        return this.parameters;
    }

    /** @internal The statement's id on `connection`, preparing it there first if needed. */
    async idOn(connection: Connection, scope: CallScope): Promise<number> {
        if (this.finalized) throw new ClosedError('statement is finalized');
        for (const c of this.ids.keys()) if (!c.isOpen) this.ids.delete(c);
        const known = this.ids.get(connection);
        if (known !== undefined) return known;
        const stmt = await connection.request({ kind: 'prepare', db: 0n, sql: this.sql }, 'stmt', scope.signal);
        this.ids.set(connection, stmt.id);
        this.parameters = stmt.params;
        return stmt.id;
    }

    async exec(params?: readonly SqlParameter[], options?: CallOptions): Promise<ExecResult> {
        const values = wireParams(params);
        return this.runner.call(options, async (c, scope) => {
            const id = await this.idOn(c, scope);
            const result = await c.request({ kind: 'exec', db: 0, stmt: id, params: values }, 'result', scope.signal);
            return toExecResult(result, this.runner.safeIntegers);
        });
    }

    query<R = Row>(params?: readonly SqlParameter[], options?: QueryOptions): Rows<R> {
        const values = wireParams(params);
        return new Rows<R>(this.runner, async (c, scope) => {
            return { kind: 'query', db: 0, stmt: await this.idOn(c, scope), params: values };
        }, options);
    }

    /** Releases the statement on every connection it was prepared on. Idempotent. */
    async finalize(): Promise<void> {
        if (this.finalized) return;
        this.finalized = true;
        const entries = [...this.ids];
        this.ids.clear();
        for (const [connection, id] of entries) await this.runner.dropStatement(connection, id);
    }
}

/** The connection of one transaction; every call runs on it, none is retried. */
export class Transaction extends Executor implements Runner {
    protected readonly runner: Runner = this;
    private active = true;
    private readonly statements = new Set<Statement>();
    private readonly streams = new Set<Rows<unknown>>();

    constructor(private readonly db: Database, private readonly connection: Connection) {
        super();
    }

    get owner(): ScopeOwner {
        return this.db.owner;
    }

    get safeIntegers(): boolean {
        return this.db.safeIntegers;
    }

    override query<R = Row>(sql: string, params?: readonly SqlParameter[], options?: QueryOptions): Rows<R> {
        const rows = super.query<R>(sql, params, options);
        this.streams.add(rows as Rows<unknown>);
        return rows;
    }

    override async prepare(sql: string, options?: CallOptions): Promise<Statement> {
        const statement = await super.prepare(sql, options);
        this.statements.add(statement);
        return statement;
    }

    async call<T>(options: CallOptions | undefined, op: (c: Connection, scope: CallScope) => Promise<T>): Promise<T> {
        return this.db.owner.run(options, (scope) => {
            this.check();
            return op(this.connection, scope);
        });
    }

    async hold<T>(scope: CallScope, start: (c: Connection, s: CallScope) => Promise<T>): Promise<HeldConnection<T>> {
        this.check();
        const value = await start(this.connection, scope);
        return { connection: this.connection, value, release: () => undefined };
    }

    async dropStatement(connection: Connection, id: number): Promise<void> {
        if (!this.active || !connection.isOpen) return;
        const request = { kind: 'finalize', db: 0, stmt: id } as const;
        await this.call(undefined, (c, scope) => c.request(request, 'empty', scope.signal));
    }

    /** @internal Closes open row streams and statements; the transaction then refuses calls. */
    async end(): Promise<void> {
        for (const rows of this.streams) await rows.return().catch(() => undefined);
        this.streams.clear();
        for (const statement of this.statements) await statement.finalize().catch(() => undefined);
        this.statements.clear();
        this.active = false;
    }

    private check(): void {
        if (!this.active) throw new ClosedError('the transaction has ended');
        if (!this.connection.isOpen) throw new ClosedError('the transaction\'s connection was lost');
        if (this.connection.isBusy) throw new BusyError('a query of this transaction is still being read');
    }
}

export class Database extends Executor implements Runner {
    protected readonly runner: Runner = this;
    /** @internal */
    readonly owner: ScopeOwner;
    readonly safeIntegers: boolean;
    private readonly lifecycle = new Lifecycle('Database');
    private readonly connector: Connector;
    private readonly pool: Pool;

    /** Use connect(). */
    constructor(options: ConnectOptions) {
        super();
        validate(options);
        const timers = new TimerSet(options.clock ?? systemClock, true);
        const logger = options.logger ?? silentLogger;
        this.owner = new ScopeOwner(timers, options.timeoutMs ?? 30_000, options.captureCallSites === true);
        this.safeIntegers = options.safeIntegers ?? false;
        this.connector = new Connector({
            servers: options.servers,
            timers,
            logger,
            bodyBytesMax: options.bodyBytesMax ?? DEFAULT_BODY_BYTES_MAX,
            dialTimeoutMs: options.dialTimeoutMs ?? 5_000,
            probeTimeoutMs: options.probeTimeoutMs ?? 10_000,
            tls: options.tls,
        });
        this.pool = new Pool({ connector: this.connector, database: options.database, size: options.poolSize ?? 4 });
        this.lifecycle.moveTo('open');
    }

    /** The address of the leader the client last connected to. */
    get leaderAddress(): string | undefined {
        return this.connector.leaderAddress;
    }

    /** Makes sure a connection to the leader with the database open exists (or can be made). */
    async ping(options?: CallOptions): Promise<void> {
        await this.call(options, async () => undefined);
    }

    /**
     * Runs `fn` inside BEGIN … COMMIT on one connection; an exception in `fn` (or a failed
     * COMMIT) rolls back and rethrows. Calls inside are never retried; BEGIN is (it did nothing).
     * A failed COMMIT closes the connection, which makes the server roll back.
     * `options` bound BEGIN and COMMIT; calls inside take their own. Inside `fn` use `tx`, not
     * the Database: a Database call runs on another pooled connection, outside the transaction
     * (and waits for a free connection if the pool is exhausted).
     */
    async transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: CallOptions): Promise<T> {
        this.lifecycle.assertOpen();
        const held = await this.owner.run(options, (scope) => this.hold(scope, async (c, inner) => {
            await c.request({ kind: 'execSql', db: 0n, sql: 'BEGIN', params: [] }, 'result', inner.signal);
        }));
        const tx = new Transaction(this, held.connection);
        let result: T;
        try {
            result = await fn(tx);
            await tx.end();
        } catch (error) {
            await tx.end();
            await this.rollback(held);
            throw error;
        }
        try {
            await this.owner.run(options, (scope) => held.connection.request(
                { kind: 'execSql', db: 0n, sql: 'COMMIT', params: [] }, 'result', scope.signal));
        } catch (error) {
            held.release(false);
            throw error;
        }
        held.release(true);
        return result;
    }

    /** Closes every connection; calls in progress reject with ClosedError. Idempotent. */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.owner.close(new ClosedError('client is closed'));
            await this.pool.close();
        });
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }

    // ---- Runner ----

    async call<T>(options: CallOptions | undefined, op: (c: Connection, scope: CallScope) => Promise<T>): Promise<T> {
        this.lifecycle.assertOpen();
        return this.owner.run(options, async (scope) => {
            const held = await this.hold(scope, op);
            held.release(true);
            return held.value;
        });
    }

    /** Acquires a connection and runs `start` on it, retrying where safe; the caller releases it. */
    async hold<T>(scope: CallScope, start: (c: Connection, s: CallScope) => Promise<T>): Promise<HeldConnection<T>> {
        for (let attempt = 0; ; attempt++) {
            this.lifecycle.assertOpen();
            let connection: Connection;
            try {
                connection = await this.pool.acquire(scope.signal);
            } catch (error) {
                // A new connection's OPEN can meet "not leader" (dqlite ≥ 1.18.2 checks it) when
                // leadership moved during discovery: nothing was done, look again.
                if (!isRetrySafe(error) || scope.signal.aborted) throw error;
                await sleep(this.owner.timers, retryDelayMs(attempt), scope.signal);
                continue;
            }
            try {
                await this.flushFinalizations(connection, scope);
                const value = await start(connection, scope);
                return { connection, value, release: (healthy) => this.pool.release(connection, healthy) };
            } catch (error) {
                const notLeader = error instanceof NotLeaderError;
                if (notLeader) {
                    this.connector.forgetLeader(connection.address);
                    this.pool.discardIdle();
                }
                const healthy = connection.isOpen && !notLeader && !isStaleConnection(error) && !connection.isBusy;
                this.pool.release(connection, healthy);
                if (!isRetrySafe(error) || scope.signal.aborted) throw error;
                await sleep(this.owner.timers, retryDelayMs(attempt), scope.signal);
            }
        }
    }

    async dropStatement(connection: Connection, id: number): Promise<void> {
        this.pool.finalizeOnNextUse(connection, id);
    }

    private async flushFinalizations(connection: Connection, scope: CallScope): Promise<void> {
        for (const id of this.pool.takeFinalizations(connection)) {
            await connection.request({ kind: 'finalize', db: 0, stmt: id }, 'empty', scope.signal).catch((error) => {
                if (!connection.isOpen) throw error;
            });
        }
    }

    private async rollback(held: HeldConnection<unknown>): Promise<void> {
        if (!held.connection.isOpen || held.connection.isBusy) {
            held.release(false);
            return;
        }
        try {
            await this.owner.run(undefined, (scope) => held.connection.request(
                { kind: 'execSql', db: 0n, sql: 'ROLLBACK', params: [] }, 'result', scope.signal));
            held.release(true);
        } catch {
            // The server rolls back when the connection closes.
            held.release(false);
        }
    }
}
