// A small pool of leader connections, each with the database open (OPEN → DB). A connection is
// handed to one user at a time (a call, a row stream that is being read, or a transaction), so
// the protocol's one-request-per-connection rule holds. Connections are created lazily, up to
// `size`; a caller beyond that waits in line. A connection that failed, or whose node said "not
// leader", is closed instead of returned.

import { assert } from '../lib/assert.js';
import { Deferred } from '../lib/deferred.js';
import { ClosedError, NotLeaderError } from '../lib/errors.js';
import type { Connection } from './connection.js';
import type { Connector } from './connector.js';

export interface PoolOptions {
    readonly connector: Connector;
    readonly database: string;
    readonly size: number;
}

export class Pool {
    private readonly options: PoolOptions;
    private readonly idle: Connection[] = [];
    private readonly all = new Set<Connection>();
    private readonly waiters: Deferred<void>[] = [];
    /** Statement ids to finalize on a connection before its next use. */
    private readonly finalizeLater = new Map<Connection, number[]>();
    private opening = 0;
    private closedFlag = false;

    constructor(options: PoolOptions) {
        assert(options.size >= 1, 'pool size must be at least 1');
        this.options = options;
    }

    get size(): number {
        return this.all.size;
    }

    /** A connection for the caller's exclusive use; give it back with release(). */
    async acquire(signal: AbortSignal): Promise<Connection> {
        for (;;) {
            if (this.closedFlag) throw new ClosedError('client is closed');
            signal.throwIfAborted();
            for (let c = this.idle.pop(); c !== undefined; c = this.idle.pop()) {
                if (c.isOpen) return c;
                this.forget(c);
            }
            if (this.all.size + this.opening < this.options.size) return await this.create(signal);
            await this.waitForChange(signal);
        }
    }

    /** Returns a connection; `healthy` false (or a closed connection) closes it instead. */
    release(connection: Connection, healthy: boolean): void {
        if (this.closedFlag) {
            void connection.close();
            return;
        }
        assert(this.all.has(connection), 'release of a connection the pool does not own');
        assert(!(healthy && connection.isBusy), 'a connection with a request in flight is not reusable');
        if (healthy && connection.isOpen && !this.closedFlag) {
            this.idle.push(connection);
        } else {
            this.forget(connection);
            void connection.close();
        }
        this.waiters.shift()?.resolve();
    }

    /** Closes every idle connection (they point at a node that is no longer the leader). */
    discardIdle(): void {
        for (const c of this.idle.splice(0)) {
            this.forget(c);
            void c.close();
        }
    }

    /** Queues a FINALIZE for `id` on `connection`, sent before the connection's next use. */
    finalizeOnNextUse(connection: Connection, id: number): void {
        if (!this.all.has(connection) || !connection.isOpen) return;
        const ids = this.finalizeLater.get(connection) ?? [];
        ids.push(id);
        this.finalizeLater.set(connection, ids);
    }

    /** Takes the ids queued for `connection`. */
    takeFinalizations(connection: Connection): number[] {
        const ids = this.finalizeLater.get(connection) ?? [];
        this.finalizeLater.delete(connection);
        return ids;
    }

    async close(): Promise<void> {
        this.closedFlag = true;
        for (const w of this.waiters.splice(0)) w.resolve();
        const connections = [...this.all];
        this.idle.length = 0;
        this.all.clear();
        this.finalizeLater.clear();
        await Promise.all(connections.map((c) => c.close()));
    }

    private forget(connection: Connection): void {
        this.all.delete(connection);
        this.finalizeLater.delete(connection);
    }

    private async create(signal: AbortSignal): Promise<Connection> {
        this.opening++;
        let connection: Connection | undefined;
        try {
            connection = await this.options.connector.connectLeader(signal);
            const open = { kind: 'open', name: this.options.database, flags: 0n, vfs: 'volatile' } as const;
            await connection.request(open, 'db', signal);
        } catch (error) {
            this.opening--;
            this.waiters.shift()?.resolve();
            if (connection !== undefined && error instanceof NotLeaderError) {
                this.options.connector.forgetLeader(connection.address);
            }
            await connection?.close();
            throw error;
        }
        this.opening--;
        if (this.closedFlag) {
            await connection.close();
            throw new ClosedError('client is closed');
        }
        this.all.add(connection);
        return connection;
    }

    private waitForChange(signal: AbortSignal): Promise<void> {
        const waiter = new Deferred<void>();
        this.waiters.push(waiter);
        const onAbort = (): void => {
            const index = this.waiters.indexOf(waiter);
            if (index >= 0) this.waiters.splice(index, 1);
            waiter.tryReject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        return waiter.promise.finally(() => signal.removeEventListener('abort', onAbort));
    }
}
