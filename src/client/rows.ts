// Query results as async iterators with backpressure (STYLE.md §6). Rows are decoded from one
// ROWS batch at a time; the next batch is read from the socket only when the caller asks for a
// row beyond the current batch, and the connection's socket is paused meanwhile, so a slow
// consumer slows the server down instead of filling memory. Leaving early (break, return(),
// an exception in the loop body) interrupts the query (wire-protocol.md §8.6) and gives the
// connection back.

import { assert } from '../lib/assert.js';
import { NotLeaderError, ProtocolError } from '../lib/errors.js';
import type { Request, ResponseOf, WireValue } from '../wire/index.js';
import type { Connection } from './connection.js';
import type { CallOptions, CallScope, ScopeOwner } from './scope.js';
import { fromWireValue } from './values.js';
import type { SqlValue } from './values.js';

/** A row as an object keyed by column name (default), or as an array with rowMode 'array'. */
export type Row = Record<string, SqlValue>;

/**
 * `signal` covers the whole iteration; `timeoutMs` bounds each wait for a batch (the first one
 * includes finding the leader), not the time the caller spends between rows.
 */
export interface QueryOptions extends CallOptions {
    /** 'object' (default): `{ column: value }`; 'array': values in column order. */
    readonly rowMode?: 'object' | 'array';
}

/** A connection held for a row stream, with the way to give it back. */
export interface HeldConnection<T> {
    readonly connection: Connection;
    readonly value: T;
    release(healthy: boolean): void;
}

/** What a Rows stream needs from its owner (a Database or a Transaction). */
export interface RowsSource {
    readonly owner: ScopeOwner;
    readonly safeIntegers: boolean;
    /** Runs `start` on a connection that stays held until release() (retrying where safe). */
    hold<T>(
        scope: CallScope, start: (connection: Connection, scope: CallScope) => Promise<T>,
    ): Promise<HeldConnection<T>>;
}

type RowsState = 'idle' | 'streaming' | 'done';

/** PART batches without rows accepted in a row (see accept()). */
const EMPTY_PARTS_MAX = 16;

export class Rows<R = Row> implements AsyncIterableIterator<R> {
    private state: RowsState = 'idle';
    private columnNames: readonly string[] | undefined;
    private batch: readonly (readonly WireValue[])[] = [];
    private index = 0;
    private lastDone = true;
    /** PART batches without rows received in a row. */
    private emptyParts = 0;
    private held: HeldConnection<unknown> | undefined;
    private chain: Promise<unknown> = Promise.resolve();

    constructor(
        private readonly source: RowsSource,
        private readonly build: (connection: Connection, scope: CallScope) => Promise<Request>,
        private readonly options: QueryOptions = {},
    ) {}

    /** Column names, known once the first row (or the end) was read. */
    get columns(): readonly string[] | undefined {
        return this.columnNames;
    }

    [Symbol.asyncIterator](): this {
        return this;
    }

    next(): Promise<IteratorResult<R, undefined>> {
        return this.serialise(() => this.step());
    }

    /** Stops early: interrupts the query if batches are still coming, and frees the connection. */
    return(): Promise<IteratorResult<R, undefined>> {
        return this.serialise(async () => {
            await this.stop();
            return { done: true, value: undefined };
        });
    }

    throw(error?: unknown): Promise<IteratorResult<R, undefined>> {
        return this.serialise(async () => {
            await this.stop();
            throw error;
        });
    }

    /** Every remaining row in an array. */
    async all(): Promise<R[]> {
        const rows: R[] = [];
        for await (const row of this) rows.push(row);
        return rows;
    }

    private serialise<T>(fn: () => Promise<T>): Promise<T> {
        const run = this.chain.then(fn, fn);
        this.chain = run.catch(() => undefined);
        return run;
    }

    private async step(): Promise<IteratorResult<R, undefined>> {
        for (;;) {
            if (this.index < this.batch.length) {
                return { done: false, value: this.shape(this.batch[this.index++] as readonly WireValue[]) };
            }
            if (this.state === 'done') return { done: true, value: undefined };
            await this.fetch();
        }
    }

    private async fetch(): Promise<void> {
        await this.source.owner.run(this.options, async (scope) => {
            try {
                if (this.state === 'idle') {
                    this.held = await this.source.hold(scope, async (connection, inner) => {
                        return connection.startRows(await this.build(connection, inner), inner.signal);
                    });
                    this.state = 'streaming';
                    this.accept(this.held.value as ResponseOf<'rows'>);
                } else {
                    const held = this.held;
                    assert(held !== undefined && this.state === 'streaming' && !this.lastDone);
                    this.accept(await held.connection.nextRows(scope.signal));
                }
            } catch (error) {
                this.batch = [];
                this.finish(false, error);
                throw error;
            }
        });
    }

    private accept(rows: ResponseOf<'rows'>): void {
        // dqlite answers a query whose column names exceed its 4 KiB buffer with PART batches of no
        // rows, without end (wire-protocol.md §12): a few in a row end the query with an error.
        this.emptyParts = rows.rows.length === 0 && !rows.done ? this.emptyParts + 1 : 0;
        if (this.emptyParts > EMPTY_PARTS_MAX) {
            throw new ProtocolError(`the server sent ${this.emptyParts} ROWS batches in a row without rows `
                + '(dqlite does so when the column names exceed 4 KiB)');
        }
        this.columnNames ??= rows.columns;
        this.batch = rows.rows;
        this.index = 0;
        this.lastDone = rows.done;
        if (rows.done) this.finish(true);
    }

    /** Ends the stream and gives the connection back; rows of the last batch stay readable. */
    private finish(healthy: boolean, error?: unknown): void {
        this.state = 'done';
        const held = this.held;
        this.held = undefined;
        if (held === undefined) return;
        held.release(healthy && held.connection.isOpen && !(error instanceof NotLeaderError));
    }

    private async stop(): Promise<void> {
        if (this.state === 'idle') {
            this.state = 'done';
            return;
        }
        this.batch = [];
        if (this.state === 'done') return;
        const held = this.held;
        assert(held !== undefined && !this.lastDone);
        try {
            await this.source.owner.run(this.options, (scope) => held.connection.interruptRows(scope.signal));
            this.finish(true);
        } catch (error) {
            this.finish(false, error);
            throw error;
        }
    }

    private shape(values: readonly WireValue[]): R {
        const safe = this.source.safeIntegers;
        if (this.options.rowMode === 'array') return values.map((v) => fromWireValue(v, safe)) as R;
        const names = this.columnNames ?? [];
        const row: Row = {};
        for (let i = 0; i < values.length; i++) {
            // defineProperty, so that a column named "__proto__" is an ordinary key.
            const value = fromWireValue(values[i] as WireValue, safe);
            const key = names[i] ?? String(i);
            Object.defineProperty(row, key, { value, enumerable: true, writable: true, configurable: true });
        }
        return row as R;
    }
}
