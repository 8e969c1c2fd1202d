// The client gateway's listener: the node's one address, shared by clients and by raft peers
// (which send CONNECT and are handed to the peer transport). The Server owns its listener and
// its Sessions (STYLE.md §7.5.1); a Session owns its socket.
//
// Lifecycle: idle → opening (listen) → open → closing → closed; failed if listen fails.
// close() stops intake first (the listener stops accepting), lets every session answer the
// request it is running and end its connection (up to closeDrainMs; the rest are destroyed),
// waits for every session to finish tearing down (which closes its SQL session), then waits
// for the listener to close. It is idempotent and memoised; after it nothing runs.

import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TlsOptions } from 'node:tls';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { Lifecycle } from '../lib/lifecycle.js';
import { systemClock } from '../lib/clock.js';
import type { Clock, Timer } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import type { Logger } from '../lib/logger.js';
import type { Backend } from './backend.js';
import { Session } from './session.js';
import type { SessionLimits } from './session.js';

export interface ServerOptions {
    readonly backend: Backend;
    /**
     * "host:port" ("[::1]:9001" for IPv6; port 0 picks a free port, see `address` after
     * start()), or "@name" for a Linux abstract Unix socket, as go-dqlite dials it.
     */
    readonly address: string;
    /**
     * When set, the listener speaks TLS with these options (node:tls). go-dqlite's cluster TLS is
     * mutual: give the node's `cert` and `key`, the cluster CA as `ca`, `requestCert: true` and
     * `rejectUnauthorized: true`. Raft peers then arrive over TLS too, and are handed off as
     * TLSSockets.
     */
    readonly tls?: TlsOptions;
    /** Connections served at once (clients and peers before their hand-off); more are closed. */
    readonly connectionsMax?: number;
    readonly limits?: Partial<SessionLimits>;
    readonly clock?: Clock;
    readonly logger?: Logger;
}

export const DEFAULT_LIMITS: SessionLimits = {
    messageBytesMax: 64 * 1024 * 1024,
    rowsBatchBytes: 4096,
    statementsMax: 4096,
    queuedRequestsMax: 16,
    heartbeatTimeoutMs: 15_000,
    handshakeTimeoutMs: 10_000,
    writeStallTimeoutMs: 60_000,
    readStallTimeoutMs: 60_000,
    sqlCloseTimeoutMs: 10_000,
    // Longer than a deposed leader's wait for its proposals' fate (RaftDriver
    // outcomeAfterStepDownMs, 3 s), so a write in flight at a handover gets its answer.
    closeDrainMs: 4_000,
};

export const DEFAULT_CONNECTIONS_MAX = 1024;

interface ListenTarget {
    readonly host?: string;
    readonly port?: number;
    readonly path?: string;
}

/** Parses a node address into what net.Server.listen() takes. */
export function parseAddress(address: string): ListenTarget {
    if (address.startsWith('@')) {
        if (address.length < 2) throw new ConfigError(`bad address "${address}"`);
        return { path: `\0${address.slice(1)}` };
    }
    const colon = address.lastIndexOf(':');
    if (colon <= 0) throw new ConfigError(`address "${address}" must be host:port`);
    let host = address.slice(0, colon);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    const portText = address.slice(colon + 1);
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535 || host.length === 0) {
        throw new ConfigError(`address "${address}" must be host:port`);
    }
    return { host, port };
}

function validateLimits(limits: SessionLimits, connectionsMax: number): void {
    const positive: [string, number][] = [
        ['connectionsMax', connectionsMax],
        ...Object.entries(limits),
    ];
    for (const [name, value] of positive) {
        if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${name} must be a positive integer`);
    }
    if (limits.messageBytesMax < 64) throw new ConfigError('messageBytesMax must be at least 64');
}

export class Server {
    private readonly lifecycle = new Lifecycle('server');
    private readonly backend: Backend;
    private readonly target: ListenTarget;
    private readonly configuredAddress: string;
    private readonly connectionsMax: number;
    private readonly limits: SessionLimits;
    private readonly clock: Clock;
    private readonly logger: Logger;
    private readonly sessions = new Set<Session>();
    private readonly listener: NetServer;
    private boundAddress: string | undefined;
    private refusedCount = 0;
    private starting: Promise<void> | undefined;

    constructor(options: ServerOptions) {
        this.backend = options.backend;
        this.configuredAddress = options.address;
        this.target = parseAddress(options.address);
        this.connectionsMax = options.connectionsMax ?? DEFAULT_CONNECTIONS_MAX;
        this.limits = { ...DEFAULT_LIMITS, ...options.limits };
        validateLimits(this.limits, this.connectionsMax);
        this.clock = options.clock ?? systemClock;
        this.logger = options.logger ?? silentLogger;
        // allowHalfOpen: a client that half-closes still gets the answers to what it sent.
        this.listener = options.tls === undefined
            ? createServer({ allowHalfOpen: true, noDelay: true }, this.onConnection)
            : createTlsServer({ ...options.tls, allowHalfOpen: true, handshakeTimeout: this.limits.handshakeTimeoutMs },
                this.onConnection);
        this.listener.on('error', (error) => this.logger.error({ error }, 'listener error'));
        this.listener.on('tlsClientError', (error: Error) => this.logger.debug({ error }, 'TLS handshake failed'));
    }

    /** The address the server listens on, with the real port once started. */
    get address(): string {
        return this.boundAddress ?? this.configuredAddress;
    }

    /** Connections open now (sessions not yet torn down or handed off). */
    get connectionCount(): number {
        return this.sessions.size;
    }

    /** Connections whose client is not reading fast enough: the gateway waits for it. */
    get connectionsAwaitingDrain(): number {
        let count = 0;
        for (const session of this.sessions) if (session.isAwaitingDrain) count++;
        return count;
    }

    /** Connections refused because connectionsMax was reached. */
    get refusedConnections(): number {
        return this.refusedCount;
    }

    /** Starts listening; may be called once. */
    start(): Promise<void> {
        this.lifecycle.moveTo('opening');
        this.starting = this.listen();
        return this.starting;
    }

    private async listen(): Promise<void> {
        try {
            await new Promise<void>((resolve, reject) => {
                const onError = (error: Error): void => reject(error);
                this.listener.once('error', onError);
                this.listener.listen({ ...this.target, exclusive: true }, () => {
                    this.listener.off('error', onError);
                    resolve();
                });
            });
        } catch (error) {
            this.lifecycle.fail(error);
            throw error;
        }
        const bound = this.listener.address();
        if (bound !== null && typeof bound === 'object') {
            const info = bound as AddressInfo;
            const host = info.family === 'IPv6' ? `[${this.target.host ?? info.address}]` : this.target.host;
            this.boundAddress = `${host ?? info.address}:${info.port}`;
        }
        if (this.lifecycle.state === 'opening') this.lifecycle.moveTo('open');
    }

    private readonly onConnection = (socket: Socket): void => {
        if (!this.lifecycle.isOpen) {
            socket.destroy();
            return;
        }
        if (this.sessions.size >= this.connectionsMax) {
            this.refusedCount++;
            socket.on('error', () => undefined);
            socket.destroy();
            return;
        }
        const session = new Session(socket, {
            backend: this.backend,
            limits: this.limits,
            clock: this.clock,
            logger: this.logger,
        });
        this.sessions.add(session);
        void session.finished.then(() => this.sessions.delete(session));
    };

    /** Stops accepting, closes every connection, and resolves once all of them are torn down. */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            // A close() during start() waits for listen() to finish, then closes the listener.
            await this.starting?.catch(() => undefined);
            // close() stops listening at once (the listening handle is released now), but its
            // callback waits for every socket the server ever accepted, including the ones
            // handed to the peer transport after CONNECT, which this server no longer owns and
            // which close only when the node closes its transport, after this. Waiting for that
            // callback here would deadlock the node's close, so do not.
            if (this.listener.listening) this.listener.close();
            // Each connection answers the request it is running, then ends; whatever has not
            // finished within closeDrainMs is cut.
            const sessions = [...this.sessions];
            for (const session of sessions) session.finishAndEnd();
            const finished = Promise.all(sessions.map((s) => s.finished));
            let timer: Timer | undefined;
            const bound = new Promise<void>((resolve) => {
                timer = this.clock.setTimer(this.limits.closeDrainMs, resolve);
            });
            await Promise.race([finished, bound]);
            timer?.cancel();
            for (const session of sessions) session.destroy();
            await finished;
        });
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }
}
