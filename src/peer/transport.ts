// PeerTransport: moves raft messages between nodes. It owns (STYLE.md §7.5.1) one PeerLink per
// known peer (each with at most one outbound connection), the inbound connections handed over
// by the gateway after CONNECT, the snapshot transfers in both directions, and one TimerSet.
//
//   Node ──owns──▶ PeerTransport ─┬─▶ PeerLink ×peers ──▶ PeerConnection (outbound)
//                                 ├─▶ PeerConnection ×inbound ──▶ SnapshotReceiver
//                                 └─▶ SnapshotSender ×transfers ──▶ PeerConnection (snapshot)
//
// Messages travel on outbound connections; every connection's reader accepts messages, so when
// two nodes dial each other both connections deliver. Only for a peer missing from the address
// book does send() fall back to a connection that peer opened to us. Delivery is best effort: raft
// retries. Every message received is checked at this edge: addressed to us, from the node the
// connection belongs to. A connection that breaks a rule is destroyed (only that one).
//
// Nothing forgets a connection before its socket emitted 'close' (links, the inbound set and
// snapshot transfers drop their reference only in the onClose callback), and close() resolves
// only after every socket closed: the JavaScript form of the rule the 2024 dqlite crash taught
// (dqlite-notes.md §F: never release what a pending close still refers to).
//
// Callbacks (onMessage, onUnreachable, onSnapshot and the sink's methods) never run after
// close() resolved; onMessage and onUnreachable never run once close() was called.
// onUnreachable is called from a microtask, never from inside send(), so the raft core is never
// re-entered. Callbacks must not throw.

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { assert } from '../lib/assert.js';
import { systemClock, TimerSet } from '../lib/clock.js';
import type { Clock, Timer } from '../lib/clock.js';
import { BusyError, ClosedError, ConfigError, ProtocolError, UnavailableError } from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger } from '../lib/logger.js';
import type { Logger } from '../lib/logger.js';
import type { InstallSnapshot, Message } from '../raft/messages.js';
import type { NodeId } from '../raft/types.js';
import { parseAddress } from './address.js';
import { encodeConnectPreamble, encodeMessage, FRAME_HEADER_BYTES } from './codec.js';
import type { PeerFrame } from './codec.js';
import { PeerConnection } from './connection.js';
import type { ConnectionDirection, ConnectionHandlers } from './connection.js';
import { resolvePeerLimits } from './limits.js';
import type { PeerLimits } from './limits.js';
import { PeerLink } from './link.js';
import type { LinkOwner, LinkStats } from './link.js';
import { SnapshotReceiver, SnapshotSender } from './snapshot.js';
import type { ReceiverOwner, SenderOwner, SnapshotOffer, SnapshotSink } from './snapshot.js';

export interface PeerAddress {
    readonly id: NodeId;
    readonly address: string;
}

export interface PeerTransportOptions {
    /** This node. */
    readonly id: NodeId;
    readonly address: string;
    readonly clock?: Clock;
    readonly logger?: Logger;
    /** A message from a peer, checked to be addressed to this node. Never an InstallSnapshot
     * whose data did not arrive: those are delivered only after the snapshot's sink finished. */
    readonly onMessage: (message: Message) => void;
    /** A peer could not be reached, or messages to it were dropped (raft: reportUnreachable). */
    readonly onUnreachable?: (id: NodeId) => void;
    /** A peer starts streaming a snapshot: return the sink its data goes to. Absent: refused. */
    readonly onSnapshot?: (offer: SnapshotOffer) => SnapshotSink | Promise<SnapshotSink>;
    readonly limits?: Partial<PeerLimits>;
    /**
     * Dial peers over TLS with these options (node:tls), as go-dqlite's cluster TLS does: the
     * node's `cert` and `key` and the cluster CA as `ca`. Inbound sockets arrive from the gateway
     * already TLS-wrapped (or not) and need nothing here.
     */
    readonly tls?: TlsConnectionOptions;
}

/** What the gateway read from the peer before the hand-off. */
export interface AcceptInfo {
    /** From the CONNECT request. */
    readonly id: NodeId;
    readonly address: string;
    /** Bytes read past the CONNECT frame: the first bytes of our frames. */
    readonly leftover?: Uint8Array;
}

export interface PeerTransportStats {
    readonly peers: readonly LinkStats[];
    readonly inboundConnections: number;
    readonly snapshotsSending: number;
    readonly snapshotsReceiving: number;
    readonly messagesReceived: number;
    /** Connections destroyed because of malformed or misaddressed frames. */
    readonly protocolErrors: number;
    readonly refusedConnections: number;
}

export class PeerTransport {
    readonly id: NodeId;
    readonly address: string;
    readonly limits: PeerLimits;
    readonly logger: Logger;
    private readonly clock: Clock;
    private readonly lifecycle = new Lifecycle('PeerTransport');
    private readonly timers: TimerSet;
    private readonly links = new Map<NodeId, PeerLink>();
    private readonly inbound = new Set<PeerConnection>();
    private readonly receivers = new Map<PeerConnection, SnapshotReceiver>();
    private readonly senders = new Map<NodeId, { sender: SnapshotSender; running: Promise<void> }>();
    /** Links removed by setPeers whose connection is still closing. */
    private readonly retiring = new Set<Promise<void>>();
    private readonly unreachable = new Set<NodeId>();
    private readonly preamble: Buffer;
    private readonly linkOwner: LinkOwner;
    private readonly senderOwner: SenderOwner;
    private readonly receiverOwner: ReceiverOwner;
    private readonly onMessageCallback: (message: Message) => void;
    private readonly onUnreachableCallback: ((id: NodeId) => void) | undefined;
    private readonly onSnapshotCallback: PeerTransportOptions['onSnapshot'];
    private readonly tlsOptions: TlsConnectionOptions | undefined;
    private nextTransferId = 1;
    private messagesReceived = 0;
    private protocolErrors = 0;
    private refusedConnections = 0;

    constructor(options: PeerTransportOptions) {
        if (options.id <= 0n || options.id >= 2n ** 64n) throw new ConfigError('id must be a non-zero u64');
        this.id = options.id;
        this.address = options.address;
        this.clock = options.clock ?? systemClock;
        this.logger = (options.logger ?? silentLogger).child({ component: 'peer', node: String(options.id) });
        this.limits = resolvePeerLimits(options.limits);
        this.timers = new TimerSet(this.clock);
        this.onMessageCallback = options.onMessage;
        this.onUnreachableCallback = options.onUnreachable;
        this.onSnapshotCallback = options.onSnapshot;
        this.tlsOptions = options.tls;
        this.preamble = encodeConnectPreamble(this.id, this.address);
        const base = {
            limits: this.limits,
            logger: this.logger,
            setTimer: (delayMs: number, fn: () => void): Timer => this.timers.setTimer(delayMs, fn),
            isStopping: (): boolean => this.lifecycle.isStopping,
        };
        this.linkOwner = {
            ...base,
            now: () => this.clock.now(),
            dial: (id, address, handlers) => this.dial(id, address, handlers, 'outbound', this.limits.writeStallMs),
            reportUnreachable: (id) => this.reportUnreachable(id),
            handleFrame: (c, frame) => this.handleFrame(c, frame),
        };
        this.senderOwner = {
            ...base,
            dial: (id, address, handlers, idleMs) => this.dial(id, address, handlers, 'snapshot', idleMs),
        };
        this.receiverOwner = { ...base, deliver: (message) => this.deliver(message) };
        this.lifecycle.moveTo('open');
    }

    get state(): Lifecycle['state'] {
        return this.lifecycle.state;
    }

    /**
     * Replaces the address book. Links to peers no longer listed are closed (queue dropped,
     * outbound connection and snapshot transfers to them ended, their inbound connections
     * closed); a changed address drops the connection to the old one. This node's own entry
     * is ignored. A no-op after close().
     */
    setPeers(peers: readonly PeerAddress[]): void {
        if (!this.lifecycle.isOpen) return;
        const wanted = new Map<NodeId, string>();
        for (const p of peers) if (p.id !== this.id) wanted.set(p.id, p.address);
        for (const [id, link] of this.links) {
            if (wanted.has(id)) continue;
            this.links.delete(id);
            this.retire(link.close());
            this.senders.get(id)?.sender.abort(new ClosedError(`peer ${id} was removed`));
            for (const c of this.inbound) if (c.peerId === id) c.destroy();
        }
        for (const [id, address] of wanted) {
            const link = this.links.get(id);
            if (link === undefined) this.links.set(id, new PeerLink(this.linkOwner, id, address));
            else link.setAddress(address);
        }
    }

    /**
     * Queues `message` for its destination. Never blocks and never throws for a peer that is
     * down or unknown: the message is dropped and the peer reported unreachable instead. A peer
     * missing from the address book is answered on a connection it opened to us, if any.
     * InstallSnapshot goes through sendSnapshot(). After close() it is a silent no-op. A message
     * whose frame exceeds frameBytesMax (which peers must agree on) is dropped and logged.
     */
    send(message: Message): void {
        if (!this.lifecycle.isOpen) return;
        assert(message.from === this.id, 'message not from this node');
        assert(message.to !== this.id, 'message to self');
        assert(message.type !== 'installSnapshot', 'InstallSnapshot is sent with sendSnapshot()');
        const link = this.links.get(message.to);
        const frame = encodeMessage(message);
        if (frame.length - FRAME_HEADER_BYTES > this.limits.frameBytesMax) {
            // The peer would refuse it and drop the connection, again at every retry: drop it here.
            this.logger.error({ peer: message.to, bytes: frame.length, type: message.type },
                'message larger than frameBytesMax dropped');
            this.reportUnreachable(message.to);
            return;
        }
        if (link !== undefined) {
            link.send(frame);
            return;
        }
        // Not in the address book (say, a node being added that does not know the configuration
        // yet): answer on a connection that peer opened to us, if one is open and not congested.
        for (const c of this.inbound) {
            if (c.peerId === message.to && c.isOpen && !c.isAwaitingDrain && !this.receivers.has(c)) {
                c.write(frame);
                return;
            }
        }
        this.reportUnreachable(message.to);
    }

    /**
     * Streams a snapshot to `message.to` on a connection of its own, then has the receiver
     * deliver `message` once its sink finished. Resolves when the receiver acknowledged; rejects
     * on refusal, checksum failure, timeout, lost connection (UnavailableError/TimeoutError),
     * BusyError if a transfer to that peer is running, ClosedError on close or peer removal,
     * UnavailableError for a peer missing from the address book. The source is iterated only once
     * the connection is up; each chunk is copied before the next is pulled, so a source may reuse
     * its buffer.
     * The source is pulled only as fast as the network drains; on failure its return() is called.
     */
    sendSnapshot(message: InstallSnapshot, source: AsyncIterable<Uint8Array>): Promise<void> {
        if (!this.lifecycle.isOpen) return Promise.reject(new ClosedError('peer transport is closed'));
        assert(message.from === this.id && message.to !== this.id, 'bad InstallSnapshot addressing');
        const link = this.links.get(message.to);
        if (link === undefined) return Promise.reject(new UnavailableError(`peer ${message.to} is not known`));
        if (this.senders.has(message.to)) {
            return Promise.reject(new BusyError(`a snapshot to ${message.to} is already being sent`));
        }
        const sender = new SnapshotSender(this.senderOwner, message.to, link.address, this.nextTransferId++, message,
            source);
        sender.onFinished = () => {
            if (this.senders.get(message.to)?.sender === sender) this.senders.delete(message.to);
        };
        this.senders.set(message.to, { sender, running: sender.run() });
        return sender.result.promise;
    }

    /**
     * Takes over a socket whose peer sent the dqlite handshake and CONNECT (the gateway's
     * hand-off). The socket must be paused with the gateway's listeners removed. Returns false
     * (the caller then destroys the socket) when closed, over the inbound limit, or the socket
     * is already gone; true means this transport owns the socket and will destroy it.
     */
    accept(socket: Socket, info: AcceptInfo): boolean {
        if (!this.lifecycle.isOpen || socket.destroyed) return false;
        if (info.id === 0n || info.id === this.id || this.inbound.size >= this.limits.inboundConnectionsMax) {
            this.refusedConnections++;
            this.logger.debug({ peer: info.id, address: info.address }, 'peer connection refused');
            return false;
        }
        const connection = new PeerConnection({
            socket,
            peerId: info.id,
            direction: 'inbound',
            clock: this.clock,
            logger: this.logger,
            frameBytesMax: this.limits.frameBytesMax,
            writeStallMs: this.limits.writeStallMs,
            idleMs: this.limits.inboundIdleMs,
            handlers: {
                onFrame: (c, frame) => this.handleFrame(c, frame),
                onClose: (c, error) => this.onInboundClose(c, error),
            },
        });
        this.inbound.add(connection);
        connection.start(info.leftover ?? new Uint8Array(0));
        return true;
    }

    stats(): PeerTransportStats {
        return {
            peers: [...this.links.values()].map((l) => l.stats()),
            inboundConnections: this.inbound.size,
            snapshotsSending: this.senders.size,
            snapshotsReceiving: this.receivers.size,
            messagesReceived: this.messagesReceived,
            protocolErrors: this.protocolErrors,
            refusedConnections: this.refusedConnections,
        };
    }

    /**
     * Stops everything: cancels every timer, destroys every socket, fails running snapshot
     * transfers (ClosedError), aborts receiving sinks. Resolves once every socket emitted
     * 'close' and every sink was finished or aborted. Idempotent.
     */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            // 1. Stop intake: no timer fires, no callback runs from here on.
            this.timers.close();
            this.unreachable.clear();
            const closing: Promise<void>[] = [...this.retiring];
            // 2. Settle everything pending.
            const error = new ClosedError('peer transport closed');
            for (const { sender, running } of this.senders.values()) {
                sender.abort(error);
                closing.push(running);
            }
            // 3. Close children; sockets tear down in their 'close' handlers.
            for (const link of this.links.values()) closing.push(link.close());
            for (const c of this.inbound) {
                c.destroy();
                closing.push(c.closed);
            }
            await Promise.all(closing);
            await Promise.all([...this.receivers.values()].map((r) => r.settled));
            this.links.clear();
        });
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }

    // ---- internals ----

    private retire(closing: Promise<void>): void {
        const tracked = closing.finally(() => this.retiring.delete(tracked));
        this.retiring.add(tracked);
    }

    private dial(id: NodeId, address: string, handlers: ConnectionHandlers, direction: ConnectionDirection,
        writeStallMs: number): PeerConnection | undefined {
        const target = parseAddress(address);
        if (target === undefined) return undefined;
        const tls = this.tlsOptions;
        const socket = tls === undefined ? connect(target) : connectTls({ ...tls, ...target });
        return new PeerConnection({
            socket,
            peerId: id,
            direction,
            clock: this.clock,
            logger: this.logger,
            frameBytesMax: this.limits.frameBytesMax,
            writeStallMs,
            dial: {
                preamble: this.preamble,
                timeoutMs: this.limits.dialTimeoutMs,
                connectEvent: tls === undefined ? 'connect' : 'secureConnect',
            },
            handlers,
        });
    }

    /** Coalesced, deferred to a microtask, dropped once closing. */
    private reportUnreachable(id: NodeId): void {
        if (this.lifecycle.isStopping || this.onUnreachableCallback === undefined) return;
        if (this.unreachable.has(id)) return;
        this.unreachable.add(id);
        queueMicrotask(() => {
            if (!this.unreachable.delete(id) || this.lifecycle.isStopping) return;
            this.onUnreachableCallback?.(id);
        });
    }

    private deliver(message: Message): void {
        if (this.lifecycle.isStopping) return;
        this.messagesReceived++;
        this.onMessageCallback(message);
    }

    private protocolViolation(c: PeerConnection, what: string): void {
        this.logger.warn({ peer: c.peerId, direction: c.direction }, `peer protocol violation: ${what}`);
        c.destroy(new ProtocolError(what));
    }

    private handleFrame(c: PeerConnection, frame: PeerFrame): void | Promise<void> {
        if (this.lifecycle.isStopping) return;
        switch (frame.kind) {
            case 'message': {
                const m = frame.message;
                if (m.type === 'installSnapshot') return this.protocolViolation(c, 'InstallSnapshot without its data');
                // Also what a stale node of another cluster, dialling an address this node now
                // uses, runs into: ids are unique (node/info.ts), so it cannot address us.
                if (m.to !== this.id) return this.protocolViolation(c, `message for node ${m.to}, not this one`);
                if (m.from !== c.peerId) {
                    return this.protocolViolation(c, `message from ${m.from} on ${c.peerId}'s connection`);
                }
                this.deliver(m);
                return;
            }
            case 'snapshotBegin':
                return this.beginSnapshot(c, frame.transferId, frame.message);
            case 'snapshotChunk':
            case 'snapshotEnd': {
                const r = this.receivers.get(c);
                if (r === undefined || r.isEnded || r.transferId !== frame.transferId) {
                    return this.protocolViolation(c, `${frame.kind} outside a transfer`);
                }
                if (frame.kind === 'snapshotChunk') return r.chunk(frame);
                return r.end(frame);
            }
            case 'snapshotAck':
                return this.protocolViolation(c, 'snapshotAck on a connection that sent no snapshot');
        }
    }

    private beginSnapshot(c: PeerConnection, transferId: number, message: InstallSnapshot): void | Promise<void> {
        if (c.direction !== 'inbound' || this.receivers.has(c)) {
            return this.protocolViolation(c, 'unexpected snapshotBegin');
        }
        if (message.to !== this.id || message.from !== c.peerId) {
            return this.protocolViolation(c, 'snapshot not addressed to this node by its sender');
        }
        const receiver = new SnapshotReceiver(this.receiverOwner, c, transferId, message);
        this.receivers.set(c, receiver);
        void receiver.settled.then(() => {
            if (this.receivers.get(c) === receiver) this.receivers.delete(c);
        });
        const open = this.onSnapshotCallback;
        const receiving = [...this.receivers.values()].filter((r) => !r.isEnded).length;
        if (open === undefined || receiving > this.limits.snapshotsInboundMax) {
            return receiver.begin(() => {
                throw new BusyError(open === undefined ? 'snapshots are not accepted' : 'too many snapshots at once');
            });
        }
        return receiver.begin(open);
    }

    private onInboundClose(c: PeerConnection, error: Error | undefined): void {
        this.inbound.delete(c);
        const receiver = this.receivers.get(c);
        receiver?.abort(error ?? new ClosedError('snapshot connection closed'));
        if (error instanceof ProtocolError) this.protocolErrors++;
        this.logger.debug({ peer: c.peerId, error }, 'inbound peer connection closed');
    }
}
