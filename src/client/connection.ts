// One client connection to one dqlite node: a net.Socket, the handshake, and request/response
// over src/wire (wire-protocol.md §1, §2, §6, §8.6).
//
// Rules this class keeps (STYLE.md §7.5):
// - It owns its socket. The socket's 'close' event is the single teardown point: every failure
//   (protocol error, abort, timeout, 'error', 'end') calls socket.destroy(err) and 'close'
//   settles whatever waits, once.
// - One request at a time (the protocol's rule): a second request while one is in flight is an
//   assertion failure; callers serialise (the pool hands a connection to one user at a time).
// - Backpressure: decoded frames wait in a short queue; when it is full the socket is paused
//   until the reader takes one, so a large result is pulled batch by batch as the caller reads.
// - An abort or timeout while waiting for a response destroys the connection: the reply may
//   still come and would be read as the answer to the next request.
// - A request that was written and whose response never came rejects with IndeterminateError
//   (it may have been applied); a request that could not be written rejects with
//   UnavailableError (it was not sent).

import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { assert } from '../lib/assert.js';
import { Deferred } from '../lib/deferred.js';
import {
    ClosedError, IndeterminateError, NotLeaderError, ProtocolError, SqliteError, TqliteError, UnavailableError,
} from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import {
    FailureCode, FrameSplitter, PROTOCOL_VERSION, decodeResponse, encodeHandshake, encodeRequest,
} from '../wire/index.js';
import type { Frame, Request, Response, ResponseKind, ResponseOf } from '../wire/index.js';

/** Frames decoded ahead of the reader before the socket is paused. */
const FRAMES_QUEUED_MAX = 4;

export interface ConnectionOptions {
    readonly address: string;
    readonly logger: Logger;
    readonly bodyBytesMax: number;
    /** The handshake word; PROTOCOL_VERSION unless talking to a legacy server. */
    readonly version?: bigint;
    /**
     * Dial over TLS with these options (node:tls): for go-dqlite's cluster TLS, the client's
     * `cert` and `key` and the cluster CA as `ca`.
     */
    readonly tls?: TlsConnectionOptions;
}

/** Turns a FAILURE response into the error class the caller acts on (STYLE.md §7.4). */
export function failureError(code: number, message: string): TqliteError {
    if (code === FailureCode.notLeader || code === FailureCode.notLeaderLegacy) {
        return new NotLeaderError(message === '' ? 'not leader' : message);
    }
    if (code === FailureCode.leadershipLost || code === FailureCode.leadershipLostLegacy) {
        return new IndeterminateError(message === '' ? 'leadership lost' : message);
    }
    return new SqliteError(code, message);
}

/** "host:port", "[v6]:port", or "@abstract" (a Linux abstract Unix socket, as go-dqlite). */
export function parseAddress(address: string): { host: string; port: number } | { path: string } {
    if (address.startsWith('@')) return { path: `\0${address.slice(1)}` };
    const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
    const port = match === null ? NaN : Number(match[3]);
    if (match === null || port > 65535) throw new UnavailableError(`bad node address "${address}"`);
    return { host: match[1] ?? (match[2] === '' ? '127.0.0.1' : (match[2] as string)), port };
}

/** closing: destroy() was called and the socket's 'close' has not come yet; nothing new starts. */
type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

export class Connection {
    readonly address: string;
    private readonly socket: Socket;
    private readonly splitter: FrameSplitter;
    private readonly logger: Logger;
    private readonly frames: Frame[] = [];
    private state: ConnectionState = 'connecting';
    private failure: Error | undefined;
    private reader: Deferred<Frame> | undefined;
    private busy = false;
    private readonly closed = new Deferred<void>();
    private readonly connected = new Deferred<void>();
    private readonly legacy: boolean;

    private constructor(options: ConnectionOptions) {
        this.address = options.address;
        this.logger = options.logger;
        this.splitter = new FrameSplitter({ bodyBytesMax: options.bodyBytesMax });
        this.legacy = options.version !== undefined && options.version !== PROTOCOL_VERSION;
        const target = parseAddress(options.address);
        this.socket = options.tls === undefined ? netConnect({ ...target }) : tlsConnect({ ...options.tls, ...target });
        this.socket.setNoDelay(true);
        // Over TLS the connection is usable once the handshake is done.
        this.socket.on(options.tls === undefined ? 'connect' : 'secureConnect', this.onConnect);
        this.socket.on('data', this.onData);
        this.socket.on('error', this.onError);
        this.socket.on('close', this.onClose);
        this.connected.promise.catch(() => undefined);
    }

    /**
     * Dials `address` and sends the handshake. Rejects with UnavailableError if the node cannot
     * be reached, or with the signal's reason.
     */
    static async open(options: ConnectionOptions, signal: AbortSignal): Promise<Connection> {
        signal.throwIfAborted();
        const connection = new Connection(options);
        const onAbort = (): void => connection.destroy(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
            await connection.connected.promise;
        } catch (error) {
            await connection.close();
            throw signal.aborted ? signal.reason : error;
        } finally {
            signal.removeEventListener('abort', onAbort);
        }
        connection.socket.write(encodeHandshake(options.version ?? PROTOCOL_VERSION));
        return connection;
    }

    get isOpen(): boolean {
        return this.state === 'open';
    }

    get isBusy(): boolean {
        return this.busy;
    }

    // ---- socket events (each starts with the state check) ----

    private readonly onConnect = (): void => {
        if (this.state !== 'connecting') return;
        this.state = 'open';
        this.connected.resolve();
    };

    private readonly onData = (chunk: Buffer): void => {
        if (this.state !== 'open') return;
        try {
            this.splitter.push(chunk);
            for (let frame = this.splitter.next(); frame !== undefined; frame = this.splitter.next()) {
                this.deliver(frame);
            }
        } catch (error) {
            this.destroy(error as Error);
            return;
        }
        if (this.frames.length >= FRAMES_QUEUED_MAX) this.socket.pause();
    };

    private readonly onError = (error: Error): void => {
        this.failure ??= error;
    };

    private readonly onClose = (): void => {
        if (this.state === 'closed') return;
        const wasConnecting = this.state === 'connecting';
        this.state = 'closed';
        const cause = this.failure;
        if (wasConnecting) {
            this.connected.reject(new UnavailableError(`cannot connect to ${this.address}`, { cause }));
        }
        this.frames.length = 0;
        const reader = this.reader;
        this.reader = undefined;
        reader?.reject(cause instanceof TqliteError ? cause : new ClosedError('connection closed', { cause }));
        this.closed.resolve();
    };

    private deliver(frame: Frame): void {
        // The server speaks only when asked: a message outside a request would be taken as the
        // answer to the next one.
        if (!this.busy) throw new ProtocolError(`${this.address}: message of type ${frame.type} outside a request`);
        const reader = this.reader;
        if (reader !== undefined) {
            this.reader = undefined;
            reader.resolve(frame);
            return;
        }
        this.frames.push(frame);
    }

    // ---- requests ----

    /** Destroys the socket (idempotent); 'close' settles everything. */
    destroy(error?: Error): void {
        if (this.state === 'closed' || this.state === 'closing') return;
        if (error !== undefined) this.failure ??= error;
        // 'closing' at once, so that nobody starts a request on a socket that is going away.
        if (this.state === 'open') this.state = 'closing';
        this.socket.destroy();
    }

    /** Closes the connection (there is no goodbye message) and waits for the socket to close. */
    close(): Promise<void> {
        this.destroy();
        return this.closed.promise;
    }

    /**
     * Sends one request and reads one response of kind `expect`. FAILURE rejects with
     * failureError() and leaves the connection usable.
     */
    async request<K extends ResponseKind>(request: Request, expect: K, signal: AbortSignal): Promise<ResponseOf<K>> {
        this.begin(signal);
        try {
            this.write(request);
            return this.expect(await this.readFrame(signal), expect);
        } finally {
            this.end();
        }
    }

    /**
     * Starts a QUERY or QUERY_SQL: sends it and returns the first ROWS batch. While a batch ended
     * with PART the connection stays busy: call nextRows() until DONE, or interruptRows().
     */
    async startRows(request: Request, signal: AbortSignal): Promise<ResponseOf<'rows'>> {
        assert(request.kind === 'query' || request.kind === 'querySql', 'not a query');
        this.begin(signal);
        let done = true;
        try {
            this.write(request);
            const rows = this.expect(await this.readFrame(signal), 'rows');
            done = rows.done;
            return rows;
        } finally {
            if (done) this.end();
        }
    }

    /** The next ROWS batch after a PART. */
    async nextRows(signal: AbortSignal): Promise<ResponseOf<'rows'>> {
        assert(this.busy, 'no query in progress');
        let done = true;
        try {
            const rows = this.expect(await this.readFrame(signal), 'rows');
            done = rows.done;
            return rows;
        } finally {
            if (done) this.end();
        }
    }

    /**
     * Ends a query early after a PART batch (§8.6): sends INTERRUPT, then reads and drops every
     * message until EMPTY (dqlite streams the rest of the rows first, then answers EMPTY).
     */
    async interruptRows(signal: AbortSignal): Promise<void> {
        assert(this.busy, 'no query in progress');
        try {
            this.write({ kind: 'interrupt', db: 0n });
            for (;;) {
                const frame = await this.readFrame(signal);
                const response = this.decode(frame);
                if (response.kind === 'empty') return;
                if (response.kind !== 'rows' && response.kind !== 'failure') {
                    throw this.protocolError(`unexpected ${response.kind} while interrupting`);
                }
            }
        } finally {
            this.end();
        }
    }

    /**
     * A request is over. A message that came after its answer (in the same chunk, so deliver()
     * still saw the request in progress) would be taken as the answer to the next request: the
     * connection is out of step with the server and is closed.
     */
    private end(): void {
        this.busy = false;
        if (this.frames.length > 0) {
            this.destroy(this.protocolError(`message of type ${this.frames[0]?.type} after the answer to a request`));
        }
    }

    private begin(signal: AbortSignal): void {
        assert(!this.busy, 'one request at a time per connection');
        signal.throwIfAborted();
        if (this.state !== 'open') {
            throw new UnavailableError(`connection to ${this.address} is closed`, { cause: this.failure });
        }
        this.busy = true;
    }

    private write(request: Request): void {
        this.socket.write(encodeRequest(request));
    }

    private readFrame(signal: AbortSignal): Promise<Frame> {
        const queued = this.frames.shift();
        if (queued !== undefined) {
            if (this.frames.length < FRAMES_QUEUED_MAX && this.socket.isPaused()) this.socket.resume();
            return Promise.resolve(queued);
        }
        if (this.state !== 'open') return Promise.reject(this.lost());
        if (signal.aborted) {
            this.destroy(signal.reason as Error);
            return Promise.reject(signal.reason);
        }
        assert(this.reader === undefined, 'one reader at a time');
        const reader = new Deferred<Frame>();
        this.reader = reader;
        if (this.socket.isPaused()) this.socket.resume();
        const onAbort = (): void => {
            // The reply may still arrive and would answer the next request: the connection ends.
            this.destroy(signal.reason as Error);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        return reader.promise.then(
            (frame) => {
                signal.removeEventListener('abort', onAbort);
                return frame;
            },
            (error: unknown) => {
                signal.removeEventListener('abort', onAbort);
                if (signal.aborted) throw signal.reason;
                throw error instanceof ProtocolError ? error : this.lost();
            },
        );
    }

    private lost(): Error {
        if (this.failure instanceof ProtocolError) return this.failure;
        return new IndeterminateError(
            `connection to ${this.address} lost before the response: the request may have been applied`,
            { cause: this.failure },
        );
    }

    private decode(frame: Frame): Response {
        try {
            return decodeResponse(frame, { legacy: this.legacy, clusterFormat: 1 });
        } catch (error) {
            this.destroy(error as Error);
            throw error;
        }
    }

    private expect<K extends ResponseKind>(frame: Frame, kind: K): ResponseOf<K> {
        const response = this.decode(frame);
        if (response.kind === 'failure') throw failureError(response.code, response.message);
        if (response.kind !== kind) throw this.protocolError(`expected ${kind}, got ${response.kind}`);
        return response as ResponseOf<K>;
    }

    private protocolError(message: string): ProtocolError {
        const error = new ProtocolError(`${this.address}: ${message}`);
        this.logger.warn({ address: this.address, error }, 'protocol error: closing the connection');
        this.destroy(error);
        return error;
    }
}
