// One client session in the SQLite worker: dqlite's `struct leader`. It owns a SQLite
// connection to one database (sql mode, see database.ts), its prepared statements and its
// open query cursors. The engine runs its requests one at a time and gates the ones that may
// write behind the database's single-writer queue.

import BetterSqlite3 from 'better-sqlite3';
import { NotLeaderError, SqliteError } from '../lib/errors.js';
import { firstStatement, parameterNames, splitStatements, utf8Offset } from '../lib/sql-statements.js';
import { openConnection, type Database, type SessionLink } from './database.js';
import type { Column, ExecResult, SqlRow, SqlValue } from './protocol.js';
import { sqliteCodeOf } from './sqlite-codes.js';

/** EXEC_SQL / QUERY_SQL statements kept prepared per session. */
const STATEMENT_CACHE_SIZE = 32;

interface Compiled {
    readonly statement: BetterSqlite3.Statement;
    readonly paramCount: number;
    /** Undefined when every parameter is an anonymous `?`: values bind in order. */
    readonly named: NamedBinding | undefined;
}

/**
 * The wire binds values by index, as sqlite3_bind_*() does; better-sqlite3 binds a parameter
 * that has a name (`:a`, `?2`) from an object keyed by the name without its first character,
 * and the others from the positional arguments in order.
 */
interface NamedBinding {
    /** 0-based indexes of the parameters without a name, in order. */
    readonly positional: readonly number[];
    readonly keys: readonly (readonly [key: string, index: number])[];
    /** Two names better-sqlite3 cannot tell apart (`:a` and `@a`), if any. */
    readonly clash: string | undefined;
}

function namedBinding(names: readonly (string | null)[]): NamedBinding | undefined {
    if (names.every((n) => n === null)) return undefined;
    const positional: number[] = [];
    const keys: [string, number][] = [];
    const seen = new Map<string, string>();
    let clash: string | undefined;
    names.forEach((name, index) => {
        if (name === null) {
            positional.push(index);
            return;
        }
        const key = name.slice(1);
        const other = seen.get(key);
        if (other !== undefined) clash ??= `${other} and ${name}`;
        seen.set(key, name);
        keys.push([key, index]);
    });
    return { positional, keys, clash };
}

export interface QueryStart {
    readonly columns: Column[];
    readonly rows: SqlRow[];
    /** 0 when every row was returned. */
    readonly cursor: number;
}

export interface Batch {
    readonly rows: SqlRow[];
    readonly done: boolean;
}

export function translateError(error: unknown): unknown {
    if (error instanceof BetterSqlite3.SqliteError) return new SqliteError(sqliteCodeOf(error.code), error.message);
    if (error instanceof RangeError && /Too many parameter|out of range/i.test(error.message)) {
        return new SqliteError(25, 'column index out of range');
    }
    if (error instanceof RangeError || error instanceof TypeError) return new SqliteError(1, error.message);
    return error;
}

function attempt<T>(fn: () => T): T {
    try {
        return fn();
    } catch (error) {
        throw translateError(error);
    }
}

export class WorkerSession implements SessionLink {
    private readonly conn: BetterSqlite3.Database;
    private readonly statements = new Map<number, Compiled>();
    /** compileCached(): SQL text → statement, least recently used first. */
    private readonly cache = new Map<string, Compiled>();
    private readonly cursors = new Map<number, Iterator<unknown[]>>();
    private readonly state: BetterSqlite3.Statement;
    private nextStatement = 1;
    private nextCursor = 1;
    private invalidReason: string | undefined;

    constructor(readonly id: number, readonly database: Database, private readonly rowsPerBatch: number) {
        database.enterSqlMode();
        this.conn = openConnection(database.path);
        this.conn.defaultSafeIntegers(true);
        this.conn.pragma('foreign_keys = ON');
        this.state = this.conn.prepare('SELECT last_insert_rowid(), changes()').raw(true);
        database.sessions.add(this);
    }

    get inTransaction(): boolean {
        return this.invalidReason === undefined && this.conn.inTransaction;
    }

    /** Leadership lost or the database was reset: let go of SQLite now (rolls back). */
    invalidate(reason: string): void {
        if (this.invalidReason !== undefined) return;
        this.invalidReason = reason;
        this.endCursors();
        this.statements.clear();
        this.cache.clear();
        this.conn.close();
    }

    close(): void {
        this.invalidate('session closed');
        this.database.sessions.delete(this);
        if (this.database.writer === this) this.database.writer = undefined;
    }

    checkValid(): void {
        if (this.invalidReason !== undefined) throw new NotLeaderError(this.invalidReason);
    }

    private compile(sql: string): Compiled {
        const statement = attempt(() => this.conn.prepare(sql));
        const names = parameterNames(sql);
        return { statement, paramCount: names.length, named: namedBinding(names) };
    }

    /**
     * compile() for EXEC_SQL / QUERY_SQL text, through a small per-session cache: clients that
     * send the same SQL text again (most do) pay SQLite's prepare and our tokenizer once.
     * Safe to share: a session runs one request at a time and ends its cursors first, and
     * SQLite re-prepares a statement by itself after a schema change.
     */
    private compileCached(sql: string): Compiled {
        const hit = this.cache.get(sql);
        if (hit !== undefined) {
            this.cache.delete(sql); // most recently used last
            this.cache.set(sql, hit);
            return hit;
        }
        const c = this.compile(sql);
        this.cache.set(sql, c);
        if (this.cache.size > STATEMENT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
        return c;
    }

    private compiled(id: number): Compiled {
        const c = this.statements.get(id);
        if (c === undefined) throw new SqliteError(1, `no such prepared statement ${id}`);
        return c;
    }

    private result(): ExecResult {
        const row = this.state.get() as [bigint, bigint];
        return { lastInsertId: BigInt.asUintN(64, row[0]), rowsAffected: row[1] };
    }

    /** better-sqlite3's arguments for values bound by index (missing ones are NULL, as in SQLite). */
    private padded(c: Compiled, params: readonly SqlValue[]): unknown[] {
        if (params.length > c.paramCount) throw new SqliteError(25, 'column index out of range');
        const named = c.named;
        if (named === undefined) return [...params, ...new Array<null>(c.paramCount - params.length).fill(null)];
        if (named.clash !== undefined) {
            throw new SqliteError(1, `parameters ${named.clash} cannot be bound separately (tqlite limitation)`);
        }
        const value = (i: number): SqlValue => params[i] ?? null;
        const args: unknown[] = named.positional.map(value);
        args.push(Object.fromEntries(named.keys.map(([key, i]) => [key, value(i)])));
        return args;
    }

    /** Whether running statement `id` (or `sql`) may write, so needs the write lock. */
    statementMayWrite(id: number): boolean {
        const c = this.statements.get(id);
        return c !== undefined && !c.statement.readonly;
    }

    prepare(sql: string): { id: number; paramCount: number; tailOffset: number } {
        this.checkValid();
        const span = firstStatement(sql);
        if (span === undefined) throw new SqliteError(0, 'empty statement');
        const c = this.compile(sql.slice(span.start, span.end));
        const id = this.nextStatement++;
        this.statements.set(id, c);
        return { id, paramCount: c.paramCount, tailOffset: utf8Offset(sql, span.end) };
    }

    finalize(id: number): void {
        this.statements.delete(id);
    }

    private run(c: Compiled, params: readonly SqlValue[]): ExecResult {
        const values = this.padded(c, params);
        if (c.statement.reader) throw new SqliteError(1, 'rows yielded when none expected for EXEC request');
        attempt(() => c.statement.run(...values));
        return this.result();
    }

    exec(id: number, params: readonly SqlValue[], afterStatement: () => void): ExecResult {
        this.checkValid();
        this.endCursors();
        const result = this.run(this.compiled(id), params);
        afterStatement();
        return result;
    }

    /** Runs every statement of `sql`; `afterStatement` captures each committed transaction. */
    execSql(sql: string, params: readonly SqlValue[], afterStatement: () => void): ExecResult {
        this.checkValid();
        this.endCursors();
        let used = 0;
        for (const span of splitStatements(sql)) {
            const c = this.compileCached(sql.slice(span.start, span.end));
            const mine = params.slice(used, used + c.paramCount);
            used += mine.length;
            try {
                this.run(c, mine);
            } finally {
                afterStatement();
            }
        }
        return this.result();
    }

    query(id: number, params: readonly SqlValue[], afterStatement: () => void): QueryStart {
        this.checkValid();
        this.endCursors();
        return this.start(this.compiled(id), params, afterStatement);
    }

    querySql(sql: string, params: readonly SqlValue[], afterStatement: () => void): QueryStart {
        this.checkValid();
        this.endCursors();
        return this.start(this.compileCached(sql), params, afterStatement);
    }

    /** Whether `sql` (one statement) may write. */
    sqlMayWrite(sql: string): boolean {
        if (this.invalidReason !== undefined) return false;
        try {
            return !this.compileCached(sql).statement.readonly;
        } catch {
            return false;
        }
    }

    private start(c: Compiled, params: readonly SqlValue[], afterStatement: () => void): QueryStart {
        const values = this.padded(c, params);
        if (!c.statement.reader) {
            attempt(() => c.statement.run(...values));
            afterStatement();
            return { columns: [], rows: [], cursor: 0 };
        }
        const columns = c.statement.columns().map((col) => ({ name: col.name, declType: col.type }));
        if (!c.statement.readonly) {
            // INSERT ... RETURNING and the like: run to completion, the write commits now.
            let rows: SqlRow[];
            try {
                rows = attempt(() => c.statement.raw(true).all(...values)) as SqlRow[];
            } finally {
                afterStatement();
            }
            return { columns, rows, cursor: 0 };
        }
        const iterator = attempt(() => c.statement.raw(true).iterate(...values)) as Iterator<unknown[]>;
        const id = this.nextCursor++;
        this.cursors.set(id, iterator);
        const first = this.next(id);
        return { columns, rows: first.rows, cursor: first.done ? 0 : id };
    }

    next(cursor: number): Batch {
        this.checkValid();
        const iterator = this.cursors.get(cursor);
        if (iterator === undefined) return { rows: [], done: true };
        const rows: SqlRow[] = [];
        try {
            while (rows.length < this.rowsPerBatch) {
                const step = iterator.next();
                if (step.done === true) {
                    this.endCursor(cursor);
                    return { rows, done: true };
                }
                rows.push(step.value as SqlValue[]);
            }
        } catch (error) {
            this.endCursor(cursor);
            throw translateError(error);
        }
        return { rows, done: false };
    }

    endCursor(cursor: number): void {
        const iterator = this.cursors.get(cursor);
        if (iterator === undefined) return;
        this.cursors.delete(cursor);
        iterator.return?.();
    }

    private endCursors(): void {
        for (const id of [...this.cursors.keys()]) this.endCursor(id);
    }
}
