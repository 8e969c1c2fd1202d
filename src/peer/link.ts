// The outbound side of one peer: a bounded queue of encoded frames and at most one outbound
// connection, dialled on demand and re-dialled with exponential backoff (backoffInitialMs
// doubling to backoffMaxMs; reset once a connection is established).
//
// Sending: with the connection open and the socket not waiting for 'drain', a frame goes
// straight to the socket; otherwise it waits in the queue. The queue is bounded by count and
// bytes; when full, the OLDEST frames are dropped (raft resends what matters, and the newest
// messages carry the newest term and commit index) and the peer is reported unreachable once per
// overflow episode. A failed dial or a lost connection also reports the peer unreachable. Raft
// tolerates every loss this causes: the transport promises nothing beyond best effort.

import type { Timer } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { NodeId } from '../raft/types.js';
import type { PeerFrame } from './codec.js';
import type { ConnectionHandlers, PeerConnection } from './connection.js';
import type { PeerLimits } from './limits.js';

/** What a link needs from its transport. */
export interface LinkOwner {
    readonly limits: PeerLimits;
    readonly logger: Logger;
    now(): number;
    setTimer(delayMs: number, fn: () => void): Timer;
    /** Dials `address`; undefined when the address is unusable. */
    dial(id: NodeId, address: string, handlers: ConnectionHandlers): PeerConnection | undefined;
    reportUnreachable(id: NodeId): void;
    handleFrame(connection: PeerConnection, frame: PeerFrame): void | Promise<void>;
}

export interface LinkStats {
    readonly id: NodeId;
    readonly address: string;
    readonly connected: boolean;
    /** The socket's buffer is full: frames wait in the queue until 'drain'. */
    readonly awaitingDrain: boolean;
    readonly queuedMessages: number;
    readonly queuedBytes: number;
    readonly droppedMessages: number;
    readonly sentMessages: number;
    readonly dials: number;
}

/** A FIFO with O(1) shift (Array.prototype.shift is O(n) on large arrays). */
class FrameQueue {
    private items: (Buffer | undefined)[] = [];
    private head = 0;

    get length(): number {
        return this.items.length - this.head;
    }

    push(frame: Buffer): void {
        this.items.push(frame);
    }

    shift(): Buffer {
        const frame = this.items[this.head];
        if (frame === undefined) throw new Error('shift from an empty FrameQueue');
        this.items[this.head++] = undefined;
        if (this.head === this.items.length) {
            this.items = [];
            this.head = 0;
        } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
            this.items = this.items.slice(this.head);
            this.head = 0;
        }
        return frame;
    }
}

export class PeerLink {
    private queue = new FrameQueue();
    private queuedBytes = 0;
    private connection: PeerConnection | undefined;
    private redialTimer: Timer | undefined;
    private backoffMs: number;
    private notBeforeMs = 0;
    private overflowReported = false;
    private closed = false;
    private droppedMessages = 0;
    private sentMessages = 0;
    private dials = 0;

    constructor(private readonly owner: LinkOwner, readonly id: NodeId, private addressValue: string) {
        this.backoffMs = owner.limits.backoffInitialMs;
    }

    get address(): string {
        return this.addressValue;
    }

    stats(): LinkStats {
        return {
            id: this.id,
            address: this.addressValue,
            connected: this.connection?.isOpen === true,
            awaitingDrain: this.connection?.isAwaitingDrain === true,
            queuedMessages: this.queue.length,
            queuedBytes: this.queuedBytes,
            droppedMessages: this.droppedMessages,
            sentMessages: this.sentMessages,
            dials: this.dials,
        };
    }

    send(frame: Buffer): void {
        if (this.closed) return;
        const c = this.connection;
        if (c !== undefined && c.isOpen && !c.isAwaitingDrain && this.queue.length === 0) {
            c.write(frame);
            this.sentMessages++;
            return;
        }
        this.enqueue(frame);
        this.ensureDialing();
    }

    /** A new address: the current connection (to the old one) is dropped; the queue is kept. */
    setAddress(address: string): void {
        if (this.closed || address === this.addressValue) return;
        this.addressValue = address;
        this.backoffMs = this.owner.limits.backoffInitialMs;
        this.notBeforeMs = 0;
        this.redialTimer?.cancel();
        this.redialTimer = undefined;
        this.connection?.destroy();
        if (this.connection === undefined && this.queue.length > 0) this.ensureDialing();
    }

    /** Drops the queue, cancels the redial and destroys the connection; resolves at its 'close'. */
    close(): Promise<void> {
        this.closed = true;
        this.redialTimer?.cancel();
        this.redialTimer = undefined;
        this.queue = new FrameQueue();
        this.queuedBytes = 0;
        const c = this.connection;
        if (c === undefined) return Promise.resolve();
        c.destroy();
        return c.closed;
    }

    private enqueue(frame: Buffer): void {
        const { queueMessagesMax, queueBytesMax } = this.owner.limits;
        this.queue.push(frame);
        this.queuedBytes += frame.length;
        let dropped = 0;
        while (this.queue.length > 1 && (this.queue.length > queueMessagesMax || this.queuedBytes > queueBytesMax)) {
            const old = this.queue.shift();
            this.queuedBytes -= old.length;
            dropped++;
        }
        if (dropped === 0) return;
        this.droppedMessages += dropped;
        if (!this.overflowReported) {
            this.overflowReported = true;
            this.owner.logger.debug({ peer: this.id, dropped }, 'peer queue full: dropping oldest messages');
            this.owner.reportUnreachable(this.id);
        }
    }

    private ensureDialing(): void {
        if (this.closed || this.connection !== undefined || this.redialTimer !== undefined) return;
        const delayMs = this.notBeforeMs - this.owner.now();
        if (delayMs <= 0) {
            this.dial();
            return;
        }
        this.redialTimer = this.owner.setTimer(delayMs, () => {
            this.redialTimer = undefined;
            this.dial();
        });
    }

    private dial(): void {
        if (this.closed || this.connection !== undefined) return;
        this.dials++;
        let established = false;
        const connection = this.owner.dial(this.id, this.addressValue, {
            onConnect: () => {
                established = true;
                this.backoffMs = this.owner.limits.backoffInitialMs;
                this.flush();
            },
            onDrain: () => this.flush(),
            onFrame: (c, frame) => this.owner.handleFrame(c, frame),
            onClose: (c, error) => {
                if (this.connection === c) this.connection = undefined;
                if (this.closed) return;
                this.owner.logger.debug({ peer: this.id, established, error }, 'peer connection closed');
                this.afterDisconnect();
            },
        });
        if (connection === undefined) {
            this.owner.logger.warn({ peer: this.id, address: this.addressValue }, 'unusable peer address');
            this.afterDisconnect();
            return;
        }
        this.connection = connection;
    }

    private afterDisconnect(): void {
        this.owner.reportUnreachable(this.id);
        this.notBeforeMs = this.owner.now() + this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, this.owner.limits.backoffMaxMs);
        if (this.queue.length > 0) this.ensureDialing();
    }

    private flush(): void {
        const c = this.connection;
        while (this.queue.length > 0 && c !== undefined && c.isOpen && !c.isAwaitingDrain) {
            const frame = this.queue.shift();
            this.queuedBytes -= frame.length;
            this.sentMessages++;
            if (!c.write(frame)) break;
        }
        if (this.queue.length === 0) this.overflowReported = false;
    }
}
