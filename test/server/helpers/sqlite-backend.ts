// A Backend for testing the gateway end to end without raft: SQL runs with better-sqlite3
// directly in the test process (never done in the product, where SQL runs in the worker
// thread), and the cluster is a fake in-memory configuration that tests can change. It follows
// the semantics documented in src/server/backend.ts so that the gateway's tests check the
// contract the node will implement.

import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ClosedError, MembershipError, NotLeaderError, SqliteError } from '../../../src/lib/errors.js';
import { firstStatement, parameterCount, splitStatements, utf8Offset } from '../../../src/lib/sql-statements.js';
import type {
    Backend, Column, DumpFile, ExecResult, LeaderInfo, Metadata, NodeId, PeerHandoff, Prepared, QueryResult, Role,
    RowBatches, ServerEntry, SqlRow, SqlSession, SqlValue,
} from '../../../src/server/backend.js';
import { translateError } from '../../../src/fsm/session.js';

type Statement = Database.Statement<unknown[], unknown>;

function attempt<T>(fn: () => T): T {
    try {
        return fn();
    } catch (error) {
        throw translateError(error);
    }
}

const ROWS_PER_BATCH = 100;

export interface SqliteBackendOptions {
    /** Directory for the database files. */
    readonly dir: string;
    readonly id: NodeId;
    /** This node's address as clients dial it (set it once the server listens). */
    address: string;
}

export class SqliteBackend implements Backend {
    readonly dir: string;
    readonly id: NodeId;
    address: string;
    /** The fake configuration; this node starts as its only voter and leader. */
    servers: ServerEntry[];
    leaderId: NodeId | undefined;
    failureDomain = 0n;
    weight = 0n;
    /** Whether CONNECT hand-offs are accepted; accepted ones are kept here. */
    acceptPeers = true;
    readonly handoffs: PeerHandoff[] = [];
    /** The next call that needs leadership (open, SQL, membership) rejects with this error. */
    failNext: unknown;
    /** The next SQL call of an open session (prepare, exec, query, ...) rejects with this error. */
    failNextSql: unknown;
    /** Counts RowBatches.next() calls, to observe backpressure. */
    batchesPulled = 0;
    readonly sessions = new Set<SqliteSqlSession>();

    constructor(options: SqliteBackendOptions) {
        this.dir = options.dir;
        this.id = options.id;
        this.address = options.address;
        this.servers = [{ id: options.id, address: options.address, role: 'voter' }];
        this.leaderId = options.id;
    }

    /** Sets this node's own address (after the server picked its port). */
    setAddress(address: string): void {
        this.address = address;
        this.servers = this.servers.map((s) => (s.id === this.id ? { ...s, address } : s));
    }

    get isLeader(): boolean {
        return this.leaderId === this.id;
    }

    requireLeader(): void {
        const failure = this.failNext;
        if (failure !== undefined) {
            this.failNext = undefined;
            throw failure;
        }
        if (!this.isLeader) throw new NotLeaderError();
    }

    pathOf(name: string): string {
        return join(this.dir, `${encodeURIComponent(name)}.db`);
    }

    async leader(): Promise<LeaderInfo> {
        const leader = this.servers.find((s) => s.id === this.leaderId);
        const self = this.servers.find((s) => s.id === this.id);
        return {
            leader: leader === undefined ? undefined : { id: leader.id, address: leader.address },
            isVoter: self?.role === 'voter',
        };
    }

    async cluster(): Promise<readonly ServerEntry[]> {
        return [...this.servers];
    }

    async describe(): Promise<Metadata> {
        return { failureDomain: this.failureDomain, weight: this.weight };
    }

    async setWeight(weight: bigint): Promise<void> {
        this.weight = weight;
    }

    async add(id: NodeId, address: string): Promise<void> {
        this.requireLeader();
        if (id === 0n) throw new MembershipError('server ID is not valid');
        if (this.servers.some((s) => s.id === id)) throw new MembershipError('server ID already in use');
        if (this.servers.some((s) => s.address === address)) throw new MembershipError('server address already in use');
        this.servers.push({ id, address, role: 'spare' });
    }

    async assign(id: NodeId, role: Role): Promise<void> {
        this.requireLeader();
        const index = this.servers.findIndex((s) => s.id === id);
        const server = this.servers[index];
        if (server === undefined) throw new MembershipError('server ID is not valid');
        this.servers[index] = { ...server, role };
    }

    async remove(id: NodeId): Promise<void> {
        this.requireLeader();
        if (!this.servers.some((s) => s.id === id)) throw new MembershipError('server ID is not valid');
        this.servers = this.servers.filter((s) => s.id !== id);
    }

    async transfer(id: NodeId): Promise<void> {
        this.requireLeader();
        const target = id === 0n
            ? this.servers.find((s) => s.id !== this.id && s.role === 'voter')
            : this.servers.find((s) => s.id === id && s.id !== this.id && s.role === 'voter');
        if (target === undefined) throw new MembershipError('leadership transfer failed');
        this.leaderId = target.id;
    }

    async dump(name: string): Promise<readonly DumpFile[]> {
        const path = this.pathOf(name);
        if (!existsSync(path)) throw new SqliteError(1002, 'database does not exist');
        const db = attempt(() => new Database(path, { readonly: true, fileMustExist: true }));
        try {
            const image = attempt(() => db.serialize());
            return [{ name, data: image }, { name: `${name}-wal`, data: new Uint8Array(0) }];
        } finally {
            db.close();
        }
    }

    connect(handoff: PeerHandoff): boolean {
        if (!this.acceptPeers) return false;
        this.handoffs.push(handoff);
        return true;
    }

    async open(name: string): Promise<SqlSession> {
        this.requireLeader();
        const db = attempt(() => new Database(this.pathOf(name)));
        attempt(() => {
            db.defaultSafeIntegers(true);
            db.pragma('journal_mode = WAL');
            db.pragma('busy_timeout = 0');
        });
        const session = new SqliteSqlSession(this, db);
        this.sessions.add(session);
        return session;
    }

    /** Closes every session still open (test teardown). */
    async close(): Promise<void> {
        for (const session of [...this.sessions]) await session.close();
    }
}

interface Entry {
    readonly statement: Statement;
    readonly paramCount: number;
}

class SqliteSqlSession implements SqlSession {
    private readonly statements = new Map<number, Entry>();
    private nextId = 1;
    private closed = false;
    private active: Iterator<unknown[]> | undefined;
    private readonly state: Statement;

    constructor(private readonly backend: SqliteBackend, private readonly db: Database.Database) {
        this.state = db.prepare('SELECT last_insert_rowid(), changes()').raw(true);
    }

    private check(leader = true): void {
        if (this.closed) throw new ClosedError('session closed');
        if (!leader) return;
        const failure = this.backend.failNextSql;
        if (failure !== undefined) {
            this.backend.failNextSql = undefined;
            throw failure;
        }
        this.backend.requireLeader();
    }

    private result(): ExecResult {
        const row = this.state.get() as [bigint, bigint];
        return { lastInsertId: row[0], rowsAffected: row[1] };
    }

    private run(entry: Entry, params: readonly SqlValue[]): ExecResult {
        if (params.length > entry.paramCount) throw new SqliteError(25, 'column index out of range');
        if (entry.statement.reader) {
            throw new SqliteError(1, 'rows yielded when none expected for EXEC request');
        }
        const padded = [...params, ...new Array<null>(entry.paramCount - params.length).fill(null)];
        attempt(() => entry.statement.run(...padded));
        return this.result();
    }

    private compile(text: string): Entry {
        const statement = attempt(() => this.db.prepare(text));
        return { statement, paramCount: parameterCount(text) };
    }

    async prepare(sql: string): Promise<Prepared> {
        this.check();
        const span = firstStatement(sql);
        if (span === undefined) throw new SqliteError(0, 'empty statement');
        const entry = this.compile(sql.slice(span.start, span.end));
        const id = this.nextId++;
        this.statements.set(id, entry);
        return { id, paramCount: entry.paramCount, tailOffset: utf8Offset(sql, span.end) };
    }

    private entry(id: number): Entry {
        const entry = this.statements.get(id);
        if (entry === undefined) throw new Error(`unknown statement handle ${id}`);
        return entry;
    }

    async exec(id: number, params: readonly SqlValue[]): Promise<ExecResult> {
        this.check();
        return this.run(this.entry(id), params);
    }

    async query(id: number, params: readonly SqlValue[]): Promise<QueryResult> {
        this.check();
        return this.start(this.entry(id), params);
    }

    async finalize(id: number): Promise<void> {
        this.check(false);
        this.statements.delete(id);
    }

    async execSql(sql: string, params: readonly SqlValue[]): Promise<ExecResult> {
        this.check();
        let used = 0;
        for (const span of splitStatements(sql)) {
            const entry = this.compile(sql.slice(span.start, span.end));
            const mine = params.slice(used, used + entry.paramCount);
            used += mine.length;
            this.run(entry, mine);
        }
        return this.result();
    }

    async querySql(sql: string, params: readonly SqlValue[]): Promise<QueryResult> {
        this.check();
        return this.start(this.compile(sql), params);
    }

    private start(entry: Entry, params: readonly SqlValue[]): QueryResult {
        if (params.length > entry.paramCount) throw new SqliteError(25, 'column index out of range');
        if (!entry.statement.reader) {
            this.run(entry, params);
            return { columns: [], batches: emptyBatches() };
        }
        const padded = [...params, ...new Array<null>(entry.paramCount - params.length).fill(null)];
        const columns: Column[] = entry.statement.columns().map((c) => ({ name: c.name, declType: c.type }));
        const iterator = attempt(() => entry.statement.raw(true).iterate(...padded)) as Iterator<unknown[]>;
        this.active = iterator;
        const backend = this.backend;
        let ended = false;
        const end = (): void => {
            if (ended) return;
            ended = true;
            if (this.active === iterator) this.active = undefined;
            iterator.return?.();
        };
        const batches: RowBatches = {
            next: async () => {
                backend.batchesPulled++;
                if (ended) return { done: true, value: undefined };
                const rows: SqlRow[] = [];
                try {
                    while (rows.length < ROWS_PER_BATCH) {
                        const next = iterator.next();
                        if (next.done === true) break;
                        rows.push(next.value as SqlValue[]);
                    }
                } catch (error) {
                    end();
                    throw translateError(error);
                }
                if (rows.length === 0) {
                    end();
                    return { done: true, value: undefined };
                }
                return { done: false, value: rows };
            },
            return: async () => {
                end();
                return { done: true, value: undefined };
            },
        };
        return { columns, batches };
    }

    interrupt(): void {
        // better-sqlite3 runs synchronously: nothing can be running while this is called.
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        this.active?.return?.();
        this.active = undefined;
        this.statements.clear();
        this.backend.sessions.delete(this);
        this.db.close();
    }
}

function emptyBatches(): RowBatches {
    const done = async (): Promise<IteratorResult<readonly SqlRow[], undefined>> => ({ done: true, value: undefined });
    return { next: done, return: done };
}
