// Leader discovery (wire-protocol.md §8.1), as go-dqlite does it, with HEAD's fast path:
//
//   1. Try the last known leader first, then every configured server in order.
//   2. For each: dial, handshake, LEADER → SERVER.
//        empty address            → this node knows no leader: next node;
//        the address we dialed    → this node is the leader: keep the connection;
//        another address          → dial that one and ask again; it must name itself.
//   3. On the leader: CLIENT(0) → WELCOME. The connection is ready.
//   4. A pass that finds no leader waits 100 ms · 2^attempt, capped at 1 s, and starts over,
//      until the caller's deadline or abort (the scope's signal) ends it.
//
// Each dial is bounded by dialTimeoutMs and each probe (dial + LEADER + CLIENT) by
// probeTimeoutMs, so a node that accepts and then says nothing cannot stall the search.

import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { TimerSet } from '../lib/clock.js';
import { TimeoutError, UnavailableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { Connection } from './connection.js';
import { CallScope, sleep } from './scope.js';

export interface ConnectorOptions {
    readonly servers: readonly string[];
    readonly timers: TimerSet;
    readonly logger: Logger;
    readonly bodyBytesMax: number;
    readonly dialTimeoutMs: number;
    readonly probeTimeoutMs: number;
    /** TLS options of every dial (see ConnectionOptions.tls). */
    readonly tls?: TlsConnectionOptions;
}

// Rounds of leader probes wait 100, 200, then 250 ms. The cap is what a client adds to a
// failover after the election (a 1 s cap made every failover about 1.5 s whenever the
// election ended between 0.7 and 1.45 s); a round is one small LEADER request per server,
// so probing four times a second during an outage costs the cluster next to nothing.
const BACKOFF_BASE_MS = 50;
const BACKOFF_MAX_MS = 250;

export class Connector {
    private readonly options: ConnectorOptions;
    private lastLeader: string | undefined;

    constructor(options: ConnectorOptions) {
        this.options = options;
    }

    /** The address of the last leader found, if any. */
    get leaderAddress(): string | undefined {
        return this.lastLeader;
    }

    /** Forgets the last leader (after it answered "not leader"). */
    forgetLeader(address: string): void {
        if (this.lastLeader === address) this.lastLeader = undefined;
    }

    /** A connection to the leader, after CLIENT. Retries until the signal fires. */
    async connectLeader(signal: AbortSignal): Promise<Connection> {
        let lastError: unknown;
        for (let attempt = 0; ; attempt++) {
            signal.throwIfAborted();
            const candidates = [...new Set([
                ...(this.lastLeader === undefined ? [] : [this.lastLeader]),
                ...this.options.servers,
            ])];
            for (const address of candidates) {
                try {
                    const connection = await this.probe(address, signal);
                    if (connection !== undefined) {
                        this.lastLeader = connection.address;
                        return connection;
                    }
                } catch (error) {
                    if (signal.aborted) throw this.deadlineError(signal, lastError ?? error);
                    lastError = error;
                    this.options.logger.debug({ address, error }, 'leader probe failed');
                }
            }
            const delayMs = Math.min(BACKOFF_BASE_MS * 2 ** (attempt + 1), BACKOFF_MAX_MS);
            try {
                await sleep(this.options.timers, delayMs, signal);
            } catch {
                throw this.deadlineError(signal, lastError);
            }
        }
    }

    /** A connection to `address` with the handshake only (DESCRIBE, WEIGHT, DUMP go to a given node). */
    async connectDirect(address: string, signal: AbortSignal): Promise<Connection> {
        return this.dial(address, signal);
    }

    private deadlineError(signal: AbortSignal, lastError: unknown): Error {
        const reason = signal.reason as Error;
        if (reason instanceof TimeoutError) {
            return new TimeoutError(`no leader found before the deadline: ${reason.message}`, { cause: lastError });
        }
        return reason;
    }

    private async dial(address: string, signal: AbortSignal): Promise<Connection> {
        const scope = new CallScope(this.options.timers, this.options.dialTimeoutMs, signal);
        try {
            return await Connection.open({
                address,
                logger: this.options.logger,
                bodyBytesMax: this.options.bodyBytesMax,
                tls: this.options.tls,
            }, scope.signal);
        } finally {
            scope.dispose();
        }
    }

    /** The leader connection via `address`, or undefined if this node knows no leader. */
    private async probe(address: string, signal: AbortSignal): Promise<Connection | undefined> {
        const scope = new CallScope(this.options.timers, this.options.probeTimeoutMs, signal);
        let connection: Connection | undefined;
        try {
            connection = await this.dial(address, scope.signal);
            let server = await connection.request({ kind: 'leader' }, 'server', scope.signal);
            if (server.address === '') return undefined;
            if (server.address !== address) {
                // Redirected: the named node must name itself (§8.1).
                await connection.close();
                connection = await this.dial(server.address, scope.signal);
                server = await connection.request({ kind: 'leader' }, 'server', scope.signal);
                if (server.address !== connection.address) {
                    throw new UnavailableError(`${server.address} does not consider itself the leader`);
                }
            }
            await connection.request({ kind: 'client', id: 0n }, 'welcome', scope.signal);
            const leader = connection;
            connection = undefined;
            return leader;
        } finally {
            scope.dispose();
            if (connection !== undefined) await connection.close();
        }
    }
}
