// One peer socket, wrapped (STYLE.md §7.5.7). The socket's 'close' event is the only teardown
// point: every failure (protocol error, 'error', 'end', a stalled write, a dial timeout, the
// owner's destroy) calls socket.destroy(err) and lets 'close' clean up exactly once. The
// connection never frees anything the socket still uses: it is forgotten by its owner only from
// the onClose callback, which runs after Node has released the handle (the lesson of the 2024
// dqlite crash, dqlite-notes.md §F: a handle freed while its close was still pending).
//
// States (lib/lifecycle): opening (dialling) → open → closing (destroy requested) → closed
// ('close' seen), or open → failed → closed when the socket errors by itself.
//
// Reading: bytes go through a FrameDecoder; each frame is handed to onFrame. If onFrame returns
// a promise (a snapshot sink is writing), the socket is paused until it settles, so a slow
// consumer pushes back on the sender through TCP instead of buffering here.
//
// Writing: write() returns socket.write()'s verdict; a false means "wait for drain". While a
// write is waiting, a stall timer runs; a peer that does not read for writeStallMs is cut off.

import type { Socket } from 'node:net';
import { assert } from '../lib/assert.js';
import type { Clock } from '../lib/clock.js';
import { TimerSet } from '../lib/clock.js';
import { Deferred } from '../lib/deferred.js';
import { ProtocolError, TimeoutError, UnavailableError } from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import type { NodeId } from '../raft/types.js';
import { FrameDecoder } from './codec.js';
import type { PeerFrame } from './codec.js';

/** TCP keepalive probes start after this much silence, so a vanished peer is eventually noticed. */
const KEEPALIVE_MS = 10_000;

export type ConnectionDirection = 'outbound' | 'inbound' | 'snapshot';

export interface ConnectionHandlers {
    /** A decoded frame. A returned promise pauses reading until it settles; a rejection destroys. */
    onFrame(connection: PeerConnection, frame: PeerFrame): void | Promise<void>;
    /** Outbound only: the socket connected and the preamble was written. */
    onConnect?(connection: PeerConnection): void;
    /** The socket drained after a write() returned false. */
    onDrain?(connection: PeerConnection): void;
    /** The socket closed; `error` is the first failure, if any. Runs exactly once. */
    onClose(connection: PeerConnection, error: Error | undefined): void;
}

export interface ConnectionOptions {
    readonly socket: Socket;
    /** The node at the other end. */
    readonly peerId: NodeId;
    readonly direction: ConnectionDirection;
    readonly clock: Clock;
    readonly logger: Logger;
    readonly frameBytesMax: number;
    readonly writeStallMs: number;
    /** Destroy the connection when nothing was read for this long (0: never). */
    readonly idleMs?: number;
    /** Outbound: the socket is still connecting; these bytes are written first on 'connect'. */
    readonly dial?: {
        readonly preamble: Uint8Array;
        readonly timeoutMs: number;
        /** 'connect' for TCP, 'secureConnect' for TLS. */
        readonly connectEvent: 'connect' | 'secureConnect';
    };
    readonly handlers: ConnectionHandlers;
}

export class PeerConnection {
    readonly peerId: NodeId;
    readonly direction: ConnectionDirection;
    private readonly socket: Socket;
    private readonly lifecycle: Lifecycle;
    private readonly timers: TimerSet;
    private readonly decoder: FrameDecoder;
    private readonly handlers: ConnectionHandlers;
    private readonly logger: Logger;
    private readonly writeStallMs: number;
    private readonly closedDeferred = new Deferred<void>();
    private failure: Error | undefined;
    /** A frame handler's promise is pending: reading is paused. */
    private busy = false;
    private stallTimer: { cancel(): void } | undefined;
    private awaitingDrain = false;
    private corked = false;
    private readonly uncork = (): void => {
        if (!this.corked) return;
        this.corked = false;
        this.socket.uncork();
    };
    private drainWaiters: (() => void)[] = [];
    private readonly clock: Clock;
    private lastReadMs: number;

    constructor(options: ConnectionOptions) {
        this.peerId = options.peerId;
        this.direction = options.direction;
        this.socket = options.socket;
        this.handlers = options.handlers;
        this.logger = options.logger;
        this.writeStallMs = options.writeStallMs;
        this.clock = options.clock;
        this.lastReadMs = options.clock.now();
        this.lifecycle = new Lifecycle(`peer connection (${options.direction} ${options.peerId})`);
        this.timers = new TimerSet(options.clock);
        this.decoder = new FrameDecoder(options.frameBytesMax);
        const socket = this.socket;
        socket.on('data', this.onData);
        socket.on('end', this.onEnd);
        socket.on('drain', this.onDrain);
        socket.on('error', this.onError);
        socket.on('close', this.onSocketClose);
        if (options.dial !== undefined) {
            const { preamble, timeoutMs, connectEvent } = options.dial;
            this.lifecycle.moveTo('opening');
            socket.once(connectEvent, () => this.onConnect(preamble));
            this.timers.setTimer(timeoutMs, () => {
                if (this.lifecycle.state === 'opening') this.destroy(new TimeoutError('peer dial timed out'));
            });
        } else {
            this.lifecycle.moveTo('open');
            socket.setNoDelay(true);
            socket.setKeepAlive(true, KEEPALIVE_MS);
        }
        const idleMs = options.idleMs ?? 0;
        if (idleMs > 0) this.armIdleTimer(idleMs, idleMs);
    }

    /** Cuts a connection nothing was read from for idleMs (reading paused by us does not count). */
    private armIdleTimer(idleMs: number, delayMs: number): void {
        this.timers.setTimer(delayMs, () => {
            const quietMs = this.clock.now() - this.lastReadMs;
            if (this.busy || quietMs < idleMs) {
                this.armIdleTimer(idleMs, this.busy ? idleMs : idleMs - quietMs);
                return;
            }
            this.destroy(new TimeoutError('peer connection idle'));
        });
    }

    /** Resolves once the socket closed and onClose ran. Never rejects. */
    get closed(): Promise<void> {
        return this.closedDeferred.promise;
    }

    get isOpen(): boolean {
        return this.lifecycle.isOpen;
    }

    get isClosed(): boolean {
        return this.lifecycle.state === 'closed';
    }

    /** True while a write is waiting for 'drain'. */
    get isAwaitingDrain(): boolean {
        return this.awaitingDrain;
    }

    /** Inbound: the bytes the gateway read past the CONNECT frame, then start reading. */
    start(head: Uint8Array): void {
        assert(this.direction === 'inbound', 'start() is for inbound connections');
        if (this.lifecycle.isStopping) return;
        if (head.length > 0) this.feed(head);
        // The peer may have finished sending before the hand-off: its 'end' went to the gateway.
        if (this.socket.readableEnded) this.destroy();
        if (!this.busy && !this.lifecycle.isStopping) this.socket.resume();
    }

    /**
     * Writes one encoded frame. Returns false when the caller must wait for drain (the frame is
     * still sent). The connection must be open.
     */
    write(frame: Uint8Array): boolean {
        assert(this.lifecycle.isOpen, 'write on a connection that is not open');
        // Frames written in one turn of the event loop leave in one writev.
        if (!this.corked) {
            this.corked = true;
            this.socket.cork();
            process.nextTick(this.uncork);
        }
        const ok = this.socket.write(frame);
        if (!ok) this.awaitingDrain = true;
        if (!ok && this.stallTimer === undefined && this.writeStallMs > 0) {
            this.stallTimer = this.timers.setTimer(this.writeStallMs, () => {
                this.stallTimer = undefined;
                this.destroy(new TimeoutError('peer stopped reading'));
            });
        }
        return ok;
    }

    /** Resolves on the next 'drain' or when the connection closes (check isOpen afterwards). */
    waitForDrain(): Promise<void> {
        if (!this.lifecycle.isOpen || !this.isAwaitingDrain) return Promise.resolve();
        return new Promise((resolve) => this.drainWaiters.push(resolve));
    }

    /** Ends the connection; teardown happens in 'close'. Idempotent. */
    destroy(error?: Error): void {
        const state = this.lifecycle.state;
        if (state === 'closing' || state === 'closed') return;
        if (error !== undefined && this.failure === undefined) this.failure = error;
        if (state === 'failed') {
            this.socket.destroy();
            return;
        }
        this.lifecycle.moveTo('closing');
        // Hand corked frames (say, a failed snapshotAck) to the kernel before closing.
        if (this.corked) this.uncork();
        this.socket.destroy();
    }

    private onConnect(preamble: Uint8Array): void {
        if (this.lifecycle.state !== 'opening') return;
        this.lifecycle.moveTo('open');
        this.socket.setNoDelay(true);
        this.socket.setKeepAlive(true, KEEPALIVE_MS);
        this.write(preamble);
        this.handlers.onConnect?.(this);
    }

    private readonly onData = (chunk: Buffer): void => {
        if (this.lifecycle.isStopping) return;
        this.lastReadMs = this.clock.now();
        this.feed(chunk);
    };

    private feed(chunk: Uint8Array): void {
        try {
            this.decoder.push(chunk);
        } catch (error) {
            this.destroy(error as Error);
            return;
        }
        this.pump();
    }

    /** Hands buffered frames to onFrame until one is asynchronous or none is left. */
    private pump(): void {
        while (!this.busy && !this.lifecycle.isStopping) {
            let frame: PeerFrame | undefined;
            try {
                frame = this.decoder.next();
            } catch (error) {
                if (error instanceof ProtocolError) {
                    this.logger.warn({ peer: this.peerId, error }, 'malformed peer frame: closing the connection');
                }
                this.destroy(error as Error);
                return;
            }
            if (frame === undefined) return;
            const result = this.handlers.onFrame(this, frame);
            if (result === undefined) continue;
            this.busy = true;
            this.socket.pause();
            result.then(
                () => {
                    this.busy = false;
                    if (this.lifecycle.isStopping) return;
                    this.socket.resume();
                    this.pump();
                },
                (error: unknown) => {
                    this.busy = false;
                    this.destroy(error instanceof Error ? error : new UnavailableError(String(error)));
                },
            );
        }
    }

    private readonly onEnd = (): void => {
        // The peer finished sending; peer connections are not half-open, so end ours too.
        this.destroy();
    };

    private readonly onDrain = (): void => {
        this.awaitingDrain = false;
        this.stallTimer?.cancel();
        this.stallTimer = undefined;
        this.releaseDrainWaiters();
        if (this.lifecycle.isStopping) return;
        this.handlers.onDrain?.(this);
    };

    private readonly onError = (error: Error): void => {
        if (this.failure === undefined) this.failure = error;
        if (!this.lifecycle.isStopping) this.lifecycle.fail(error);
        this.socket.destroy();
    };

    private readonly onSocketClose = (): void => {
        if (this.lifecycle.state === 'closed') return;
        if (this.lifecycle.state !== 'closing' && this.lifecycle.state !== 'failed') this.lifecycle.moveTo('closing');
        this.lifecycle.moveTo('closed');
        this.timers.close();
        this.stallTimer = undefined;
        this.releaseDrainWaiters();
        const socket = this.socket;
        socket.off('data', this.onData);
        socket.off('end', this.onEnd);
        socket.off('drain', this.onDrain);
        socket.off('close', this.onSocketClose);
        // 'error' stays handled: a late error on a destroyed socket must not become uncaught.
        try {
            this.handlers.onClose(this, this.failure);
        } finally {
            this.closedDeferred.resolve();
        }
    };

    private releaseDrainWaiters(): void {
        const waiters = this.drainWaiters;
        this.drainWaiters = [];
        for (const w of waiters) w();
    }
}
