// Snapshot streaming (DESIGN.md §3.4). Each transfer gets its own connection, so a large
// snapshot never delays heartbeats on the peer's message connection, and TCP flow control
// applies to it alone:
//
//   sender                                   receiver
//   dial + preamble
//   snapshotBegin {id, InstallSnapshot}  →   onSnapshot(offer) → sink
//   snapshotChunk {id, offset, data} ×n  →   sink.write(data)   (reading paused while it runs)
//   snapshotEnd {id, totalBytes, crc}    →   check count and CRC-32C → sink.finish()
//                                            → onMessage(InstallSnapshot)
//                                        ←   snapshotAck {id, ok, reason}
//   close
//
// The sender awaits 'drain' whenever the socket's buffer is full and pulls the next chunk from
// its source only then, so neither side ever holds more than a chunk or two beyond what the
// kernel buffers. A failed check, a refused offer, a sink error, a timeout or a lost connection
// fails the transfer on both sides: the receiver aborts its sink (exactly once, after any
// pending sink call settled) and the sender's promise rejects.

import { assert } from '../lib/assert.js';
import { crc32c } from '../lib/crc32c.js';
import { Deferred } from '../lib/deferred.js';
import { ClosedError, ProtocolError, TimeoutError, UnavailableError } from '../lib/errors.js';
import type { Timer } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { InstallSnapshot } from '../raft/messages.js';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { encodeFrame } from './codec.js';
import type { PeerFrame } from './codec.js';
import type { ConnectionHandlers, PeerConnection } from './connection.js';
import type { PeerLimits } from './limits.js';

/** What the receiving node is offered when a peer starts streaming a snapshot. */
export interface SnapshotOffer {
    readonly from: NodeId;
    readonly meta: SnapshotMeta;
    readonly message: InstallSnapshot;
}

/**
 * Where received snapshot data goes (the node writes it to a temporary directory). Calls are
 * strictly sequential. A sink ends with finish() or with abort(), never both; abort() is called
 * at most once, never after finish() was called (a finish() that throws ends the sink itself).
 * A chunk passed to write() belongs to the sink. Throwing (or rejecting) from write() or finish() fails the
 * transfer; finish() is the place to verify the content and fsync it.
 */
export interface SnapshotSink {
    write(chunk: Uint8Array): void | Promise<void>;
    /** Every byte arrived and the transfer's checksum matched. */
    finish(): void | Promise<void>;
    /** The transfer failed; discard what was written. Must not throw. */
    abort(reason: Error): void | Promise<void>;
}

export interface SnapshotOwner {
    readonly limits: PeerLimits;
    readonly logger: Logger;
    setTimer(delayMs: number, fn: () => void): Timer;
    /** True once the transport began closing: no sink call starts after that. */
    isStopping(): boolean;
}

function noop(): void {
    return undefined;
}

// ---- sending ----

export interface SenderOwner extends SnapshotOwner {
    dial(id: NodeId, address: string, handlers: ConnectionHandlers, idleMs: number): PeerConnection | undefined;
}

export class SnapshotSender {
    /** Settles when the receiver acknowledged (resolve) or the transfer failed (reject). */
    readonly result = new Deferred<void>();
    private connection: PeerConnection | undefined;
    private readonly connected = new Deferred<void>();
    private readonly ack = new Deferred<void>();
    private abortError: Error | undefined;
    /** Called once the transfer's socket is gone, just before `result` settles (if not yet). */
    onFinished: (() => void) | undefined;

    constructor(
        private readonly owner: SenderOwner,
        readonly to: NodeId,
        private readonly address: string,
        readonly transferId: number,
        private readonly message: InstallSnapshot,
        private readonly source: AsyncIterable<Uint8Array>,
    ) {
        this.connected.promise.catch(noop);
        this.ack.promise.catch(noop);
    }

    /** Fails the transfer now (transport closing, peer removed). The run loop then cleans up. */
    abort(error: Error): void {
        if (this.abortError === undefined) this.abortError = error;
        this.result.tryReject(error);
        this.connected.tryReject(error);
        this.ack.tryReject(error);
        this.connection?.destroy(error);
    }

    /** Streams the snapshot. Never rejects: the outcome goes to `result`. */
    async run(): Promise<void> {
        let iterator: AsyncIterator<Uint8Array> | undefined;
        let exhausted = false;
        let ackTimer: Timer | undefined;
        let failure: unknown;
        try {
            const connection = this.owner.dial(this.to, this.address, this.handlers(),
                this.owner.limits.snapshotIdleTimeoutMs);
            if (connection === undefined) throw new UnavailableError(`unusable peer address ${this.address}`);
            this.connection = connection;
            if (this.abortError !== undefined) connection.destroy(this.abortError);
            await this.connected.promise;
            const transferId = this.transferId;
            await this.write(encodeFrame({ kind: 'snapshotBegin', transferId, message: this.message }));
            iterator = this.source[Symbol.asyncIterator]();
            let offset = 0;
            let checksum = 0;
            const chunkBytes = this.owner.limits.snapshotChunkBytes;
            for (;;) {
                this.checkAlive();
                let next: IteratorResult<Uint8Array>;
                try {
                    next = await iterator.next();
                } catch (error) {
                    exhausted = true; // a source that threw is finished: no return() call
                    throw error;
                }
                if (next.done === true) {
                    exhausted = true;
                    break;
                }
                this.checkAlive();
                const data = next.value;
                for (let at = 0; at < data.length; at += chunkBytes) {
                    const piece = data.subarray(at, Math.min(data.length, at + chunkBytes));
                    checksum = crc32c(piece, checksum);
                    await this.write(encodeFrame({ kind: 'snapshotChunk', transferId, offset, data: piece }));
                    offset += piece.length;
                }
            }
            ackTimer = this.owner.setTimer(this.owner.limits.snapshotAckTimeoutMs,
                () => this.abort(new TimeoutError('snapshot not acknowledged in time')));
            await this.write(encodeFrame({ kind: 'snapshotEnd', transferId, totalBytes: offset, checksum }));
            await this.ack.promise;
        } catch (error) {
            failure = this.abortError ?? error;
            if (iterator !== undefined && !exhausted) await this.closeSource(iterator);
        }
        // The outcome is reported only once the transfer's socket is gone (abort() reports early).
        ackTimer?.cancel();
        const c = this.connection;
        if (c !== undefined) {
            c.destroy();
            await c.closed;
        }
        this.onFinished?.();
        if (failure === undefined) this.result.tryResolve();
        else this.result.tryReject(failure);
    }

    private async closeSource(iterator: AsyncIterator<Uint8Array>): Promise<void> {
        try {
            await iterator.return?.();
        } catch (error) {
            this.owner.logger.warn({ peer: this.to, error }, 'snapshot source failed to close');
        }
    }

    private checkAlive(): void {
        if (this.abortError !== undefined) throw this.abortError;
        if (this.connection === undefined || !this.connection.isOpen) throw this.lostError();
    }

    private lostError(cause?: Error): Error {
        return this.abortError ?? new UnavailableError(`snapshot connection to ${this.to} lost`, { cause });
    }

    /** Writes a frame, waiting for 'drain' when the socket's buffer is full. */
    private async write(frame: Buffer): Promise<void> {
        this.checkAlive();
        const c = this.connection as PeerConnection;
        if (!c.write(frame)) await c.waitForDrain();
        this.checkAlive();
    }

    private handlers(): ConnectionHandlers {
        return {
            onConnect: () => this.connected.tryResolve(),
            onFrame: (c, frame) => this.onFrame(c, frame),
            onClose: (_c, error) => {
                const lost = this.lostError(error);
                this.connected.tryReject(lost);
                this.ack.tryReject(lost);
            },
        };
    }

    private onFrame(c: PeerConnection, frame: PeerFrame): void {
        if (frame.kind !== 'snapshotAck' || frame.transferId !== this.transferId || this.ack.settled) {
            c.destroy(new ProtocolError(`unexpected ${frame.kind} frame on a snapshot connection`));
            return;
        }
        if (frame.ok) this.ack.tryResolve();
        else this.ack.tryReject(new UnavailableError(`peer ${this.to} refused the snapshot: ${frame.reason}`));
    }
}

// ---- receiving ----

export interface ReceiverOwner extends SnapshotOwner {
    /** Delivers the InstallSnapshot message (dropped if the transport is closing). */
    deliver(message: InstallSnapshot): void;
}

export class SnapshotReceiver {
    private sink: SnapshotSink | undefined;
    private receivedBytes = 0;
    private checksum = 0;
    private idleTimer: Timer | undefined;
    private state: 'receiving' | 'finishing' | 'finished' | 'aborted' = 'receiving';
    /** The sink call in progress, if any (abort waits for it). */
    private pending: Promise<unknown> = Promise.resolve();
    private readonly settledDeferred = new Deferred<void>();

    constructor(
        private readonly owner: ReceiverOwner,
        private readonly connection: PeerConnection,
        readonly transferId: number,
        private readonly message: InstallSnapshot,
    ) {
        this.touch();
    }

    get receivedByteCount(): number {
        return this.receivedBytes;
    }

    /** Resolves once the sink was finished or aborted (or never opened). */
    get settled(): Promise<void> {
        return this.settledDeferred.promise;
    }

    get isEnded(): boolean {
        return this.state === 'finished' || this.state === 'aborted';
    }

    begin(open: (offer: SnapshotOffer) => SnapshotSink | Promise<SnapshotSink>): Promise<void> {
        const m = this.message;
        return this.track(async () => {
            this.sink = await open({ from: m.from, meta: m.meta, message: m });
        });
    }

    chunk(frame: Extract<PeerFrame, { kind: 'snapshotChunk' }>): Promise<void> | void {
        if (frame.offset !== this.receivedBytes) {
            const what = `snapshot chunk at ${frame.offset}, expected ${this.receivedBytes}`;
            this.connection.destroy(new ProtocolError(what));
            return;
        }
        this.touch();
        this.receivedBytes += frame.data.length;
        this.checksum = crc32c(frame.data, this.checksum);
        const sink = this.sink;
        assert(sink !== undefined);
        return this.track(async () => sink.write(frame.data));
    }

    end(frame: Extract<PeerFrame, { kind: 'snapshotEnd' }>): Promise<void> {
        this.idleTimer?.cancel();
        this.idleTimer = undefined;
        return this.track(async () => {
            if (frame.totalBytes !== this.receivedBytes || frame.checksum !== this.checksum) {
                throw new ProtocolError(`snapshot check failed: ${this.receivedBytes} bytes, crc ${this.checksum}; ` +
                    `sender said ${frame.totalBytes} bytes, crc ${frame.checksum}`);
            }
            const sink = this.sink;
            assert(sink !== undefined && this.state === 'receiving');
            this.state = 'finishing';
            try {
                await sink.finish();
            } catch (error) {
                // A sink whose finish() failed is ended by that failure: it is not aborted too.
                this.state = 'aborted';
                this.settledDeferred.resolve();
                throw error;
            }
            this.state = 'finished';
            this.settledDeferred.resolve();
            this.owner.deliver(this.message);
            this.sendAck(true, '');
        });
    }

    /**
     * Fails the transfer: once the pending sink call settled, the sink is aborted (exactly once).
     * Called when the connection closes (whatever the reason) and by a failing step.
     */
    abort(error: Error): void {
        // While finishing, finish() decides the outcome (and settles); never abort after it.
        if (this.state !== 'receiving') return;
        this.state = 'aborted';
        this.idleTimer?.cancel();
        this.idleTimer = undefined;
        void this.pending.then(async () => {
            try {
                await this.sink?.abort(error);
            } catch (abortError) {
                this.owner.logger.warn({ error: abortError }, 'snapshot sink abort threw');
            }
            this.settledDeferred.resolve();
        });
    }

    /** Runs a sink step; a failure is reported to the sender and then closes the connection. */
    private track(step: () => Promise<void>): Promise<void> {
        const p = this.pending.then(() => {
            if (this.owner.isStopping()) throw new ClosedError('peer transport closed');
            if (this.state === 'aborted') throw new ClosedError('snapshot transfer aborted');
            return step();
        });
        this.pending = p.catch(noop);
        return p.catch((error: unknown) => {
            const failure = error instanceof Error ? error : new UnavailableError(String(error));
            this.sendAck(false, failure.message);
            this.abort(failure);
            throw failure;
        });
    }

    private sendAck(ok: boolean, reason: string): void {
        if (!this.connection.isOpen) return;
        this.connection.write(encodeFrame({ kind: 'snapshotAck', transferId: this.transferId, ok, reason }));
    }

    private touch(): void {
        this.idleTimer?.cancel();
        this.idleTimer = this.owner.setTimer(this.owner.limits.snapshotIdleTimeoutMs, () => {
            this.idleTimer = undefined;
            this.connection.destroy(new TimeoutError('snapshot transfer stalled'));
        });
    }
}
