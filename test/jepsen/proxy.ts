// An in-process TCP fault proxy for the cluster fault tests (TESTING.md §8(b)): `tc netem` is not
// available on this kernel and toxiproxy is not packaged, so every link a test wants to break goes
// through one of these. A LinkProxy is one listener (127.0.0.1, port 0) for one directed link: the
// connections one party opens to one target. Its mode decides what happens to the bytes:
//
//   pass        forward both directions as they come (with TCP backpressure);
//   black-hole  accept connections but forward nothing: reading stops, sockets stay open, new
//               connections are parked without an upstream; like a dead network path, where TCP
//               neither delivers nor fails. Going back to pass delivers what the kernel buffered,
//               as TCP would after a partition heals;
//   reset       destroy every connection (RST) and every new one at once: a refused/killed link;
//   delay       forward each chunk after `ms` plus a uniform seeded jitter in [0, jitterMs],
//               preserving the byte order of each direction;
//   one-way     forward one direction only and discard the bytes of the other (this breaks the
//               stream's framing on purpose: an asymmetric, lossy link).
//
// ProxyNetwork builds one LinkProxy per directed pair of nodes (and one per node for clients) and
// offers partitions on top: isolate a node, split into groups (majority/minority), a bridge, a
// one-way cut. Lifecycle (STYLE.md §7.5): the proxy owns its server, every socket and every timer;
// close() is idempotent, destroys every socket and resolves only after every handle has closed.

import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { assert } from '../../src/lib/assert.js';
import { systemClock, type Clock, type Timer } from '../../src/lib/clock.js';
import { Lifecycle } from '../../src/lib/lifecycle.js';
import { SeededRandom, hashString } from '../../src/lib/random.js';

export type LinkMode =
    | { readonly kind: 'pass' }
    | { readonly kind: 'black-hole' }
    | { readonly kind: 'reset' }
    | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs: number }
    /** 'forward' keeps initiator → target bytes; 'backward' keeps target → initiator bytes. */
    | { readonly kind: 'one-way'; readonly keep: 'forward' | 'backward' };

export const PASS: LinkMode = { kind: 'pass' };
export const BLACK_HOLE: LinkMode = { kind: 'black-hole' };
export const RESET: LinkMode = { kind: 'reset' };

export interface Endpoint {
    readonly host: string;
    readonly port: number;
}

export interface LinkProxyOptions {
    readonly name: string;
    readonly target: Endpoint;
    /** Seeds the delay jitter. */
    readonly seed: number;
    readonly clock?: Clock;
    /** Connections beyond this are destroyed on accept (default 256). */
    readonly connectionsMax?: number;
}

/** Bytes a direction may hold (delayed or unwritten) before it stops reading its source. */
const QUEUED_BYTES_MAX = 1 << 20;

type PipeMode = 'flow' | 'hold' | 'drop';

/** One direction of one connection: bytes from `source` to `sink`, in order. */
class Pipe {
    private readonly queue: { chunk: Buffer; dueMs: number }[] = [];
    private queuedBytes = 0;
    private lastDueMs = 0;
    private timer: Timer | undefined;
    private mode: PipeMode = 'hold';
    private delayMs = 0;
    private jitterMs = 0;
    private sourceEnded = false;
    private waitingForDrain = false;
    private stopped = false;

    constructor(
        private readonly source: Socket,
        private readonly sink: Socket,
        private readonly clock: Clock,
        private readonly random: SeededRandom,
    ) {
        source.on('data', (chunk: Buffer) => this.onData(chunk));
        source.on('end', () => {
            this.sourceEnded = true;
            this.pump();
        });
        sink.on('drain', () => {
            this.waitingForDrain = false;
            this.pump();
        });
    }

    configure(mode: PipeMode, delayMs = 0, jitterMs = 0): void {
        if (this.stopped) return;
        this.mode = mode;
        this.delayMs = delayMs;
        this.jitterMs = jitterMs;
        if (mode === 'drop') {
            this.droppedBytes += this.queuedBytes;
            this.queue.length = 0;
            this.queuedBytes = 0;
        }
        this.pump();
    }

    /** Bytes read from the source and not yet written to the sink. */
    get pendingBytes(): number {
        return this.queuedBytes;
    }

    stop(): void {
        this.stopped = true;
        this.timer?.cancel();
        this.timer = undefined;
        this.queue.length = 0;
    }

    /** Bytes discarded in drop mode. */
    droppedBytes = 0;

    private onData(chunk: Buffer): void {
        if (this.stopped) return;
        if (this.mode === 'drop') {
            this.droppedBytes += chunk.length;
            return;
        }
        const jitter = this.jitterMs > 0 ? this.random.float() * this.jitterMs : 0;
        const dueMs = Math.max(this.lastDueMs, this.clock.now() + this.delayMs + jitter);
        this.lastDueMs = dueMs;
        this.queue.push({ chunk, dueMs });
        this.queuedBytes += chunk.length;
        this.pump();
    }

    /** Moves due bytes to the sink and decides whether the source may be read. */
    private pump(): void {
        if (this.stopped) return;
        this.timer?.cancel();
        this.timer = undefined;
        if (this.mode === 'flow') {
            const nowMs = this.clock.now();
            while (this.queue.length > 0 && !this.waitingForDrain) {
                const head = this.queue[0] as { chunk: Buffer; dueMs: number };
                if (head.dueMs > nowMs) break;
                this.queue.shift();
                this.queuedBytes -= head.chunk.length;
                if (!this.sink.write(head.chunk)) this.waitingForDrain = true;
            }
            const head = this.queue[0];
            if (head !== undefined && !this.waitingForDrain) {
                this.timer = this.clock.setTimer(Math.max(0, head.dueMs - nowMs), () => this.pump());
            }
            if (this.queue.length === 0 && this.sourceEnded && !this.sink.writableEnded) this.sink.end();
        } else if (this.mode === 'drop' && this.sourceEnded && !this.sink.writableEnded) {
            this.sink.end();
        }
        const mayRead = this.mode !== 'hold' && !this.waitingForDrain && this.queuedBytes < QUEUED_BYTES_MAX;
        if (mayRead && this.source.isPaused()) this.source.resume();
        if (!mayRead && !this.source.isPaused()) this.source.pause();
    }
}

/** One accepted connection and, once connected, its upstream socket. */
class ProxyConnection {
    upstream: Socket | undefined;
    private forward: Pipe | undefined;
    private backward: Pipe | undefined;
    private closedCount = 0;
    private finished = false;

    constructor(
        private readonly link: LinkProxy,
        readonly downstream: Socket,
        private readonly onFinished: (c: ProxyConnection) => void,
    ) {
        downstream.pause();
        downstream.setNoDelay(true);
        downstream.on('error', () => this.destroy(false));
        downstream.on('close', () => this.onClose());
    }

    /** Opens the upstream connection (once the link lets traffic through). */
    connectUpstream(target: Endpoint, clock: Clock, random: SeededRandom): void {
        if (this.upstream !== undefined || this.finished) return;
        const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
        this.upstream = upstream;
        upstream.setNoDelay(true);
        upstream.pause();
        upstream.on('error', () => this.destroy(false));
        upstream.on('close', () => this.onClose());
        upstream.once('connect', () => {
            if (this.finished) return;
            this.forward = new Pipe(this.downstream, upstream, clock, random);
            this.backward = new Pipe(upstream, this.downstream, clock, random);
            this.apply(this.link.mode);
        });
    }

    get pendingBytes(): number {
        return (this.forward?.pendingBytes ?? 0) + (this.backward?.pendingBytes ?? 0);
    }

    get droppedBytes(): number {
        return (this.forward?.droppedBytes ?? 0) + (this.backward?.droppedBytes ?? 0);
    }

    apply(mode: LinkMode): void {
        if (this.finished) return;
        switch (mode.kind) {
            case 'reset':
                this.destroy(true);
                return;
            case 'black-hole':
                this.forward?.configure('hold');
                this.backward?.configure('hold');
                return;
            case 'pass':
                this.forward?.configure('flow');
                this.backward?.configure('flow');
                return;
            case 'delay':
                this.forward?.configure('flow', mode.ms, mode.jitterMs);
                this.backward?.configure('flow', mode.ms, mode.jitterMs);
                return;
            case 'one-way':
                this.forward?.configure(mode.keep === 'forward' ? 'flow' : 'drop');
                this.backward?.configure(mode.keep === 'backward' ? 'flow' : 'drop');
                return;
        }
    }

    /** Destroys both sockets; with `reset`, the client side gets a TCP RST. */
    destroy(reset: boolean): void {
        this.forward?.stop();
        this.backward?.stop();
        if (reset && !this.downstream.destroyed) this.downstream.resetAndDestroy();
        else this.downstream.destroy();
        this.upstream?.destroy();
    }

    /** The only teardown point: when every socket of this connection has closed. */
    private onClose(): void {
        this.closedCount++;
        this.destroy(false);
        const sockets = this.upstream === undefined ? 1 : 2;
        if (this.closedCount >= sockets && !this.finished) {
            this.finished = true;
            this.onFinished(this);
        }
    }
}

/** One listener for one directed link; see the file comment. */
/** Listens on 127.0.0.1:port (0: any) and resolves with the port bound. */
export async function listenLoopback(server: Server, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port }, () => {
            server.off('error', reject);
            resolve();
        });
    });
    return (server.address() as AddressInfo).port;
}

export class LinkProxy {
    readonly name: string;
    readonly target: Endpoint;
    private readonly lifecycle: Lifecycle;
    private readonly server: Server;
    private readonly clock: Clock;
    private readonly random: SeededRandom;
    private readonly connectionsMax: number;
    private readonly connections = new Set<ProxyConnection>();
    private allClosed: (() => void) | undefined;
    private currentMode: LinkMode = PASS;
    private listenPort = 0;
    /** Connections accepted over the proxy's life (for tests and reports). */
    acceptedCount = 0;

    private constructor(options: LinkProxyOptions) {
        this.name = options.name;
        this.target = options.target;
        this.lifecycle = new Lifecycle(`proxy ${options.name}`);
        this.clock = options.clock ?? systemClock;
        this.random = new SeededRandom(hashString(options.name, options.seed >>> 0) | 0);
        this.connectionsMax = options.connectionsMax ?? 256;
        this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onAccept(socket));
    }

    static async open(options: LinkProxyOptions): Promise<LinkProxy> {
        const proxy = new LinkProxy(options);
        proxy.lifecycle.moveTo('opening');
        proxy.listenPort = await listenLoopback(proxy.server, 0);
        proxy.lifecycle.moveTo('open');
        return proxy;
    }

    /** Where the initiator should connect instead of the target. */
    get address(): Endpoint {
        return { host: '127.0.0.1', port: this.listenPort };
    }

    get mode(): LinkMode {
        return this.currentMode;
    }

    get connectionCount(): number {
        return this.connections.size;
    }

    /** Bytes the proxy holds (delayed, or waiting for the sink to drain). */
    get pendingBytes(): number {
        let total = 0;
        for (const c of this.connections) total += c.pendingBytes;
        return total;
    }

    /** Bytes discarded by one-way mode on the open connections. */
    get droppedBytes(): number {
        let total = 0;
        for (const c of this.connections) total += c.droppedBytes;
        return total;
    }

    setMode(mode: LinkMode): void {
        this.lifecycle.assertOpen();
        if (mode.kind === 'delay') assert(mode.ms >= 0 && mode.jitterMs >= 0, 'negative delay');
        this.currentMode = mode;
        for (const c of [...this.connections]) {
            const flows = mode.kind !== 'black-hole' && mode.kind !== 'reset';
            if (flows) c.connectUpstream(this.target, this.clock, this.random);
            c.apply(mode);
        }
    }

    private onAccept(socket: Socket): void {
        const refuse = this.lifecycle.isStopping || this.currentMode.kind === 'reset' ||
            this.connections.size >= this.connectionsMax;
        if (refuse) {
            socket.on('error', () => {});
            socket.resetAndDestroy();
            return;
        }
        this.acceptedCount++;
        const connection = new ProxyConnection(this, socket, (c) => {
            this.connections.delete(c);
            if (this.connections.size === 0) this.allClosed?.();
        });
        this.connections.add(connection);
        if (this.currentMode.kind !== 'black-hole') connection.connectUpstream(this.target, this.clock, this.random);
    }

    /** Stops listening, destroys every connection and resolves once every handle has closed. */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
            const connectionsClosed = new Promise<void>((resolve) => {
                this.allClosed = resolve;
                if (this.connections.size === 0) resolve();
            });
            for (const c of [...this.connections]) c.destroy(false);
            await Promise.all([serverClosed, connectionsClosed]);
        });
    }
}

export interface NetworkNode {
    readonly id: string;
    readonly target: Endpoint;
}

/** How partition helpers cut a link (default black-hole). */
export type CutMode = LinkMode;

/**
 * A proxy for every directed link among nodes (node a reaches node b at addressFor(a, b)) and a
 * client link per node (clients reach b at clientAddress(b)). Partition helpers set whole links;
 * heal() sets every link back to pass.
 */
export class ProxyNetwork {
    private readonly links = new Map<string, LinkProxy>();
    private readonly lifecycle = new Lifecycle('proxy network');
    readonly nodeIds: readonly string[];

    private constructor(nodes: readonly NetworkNode[]) {
        this.nodeIds = nodes.map((n) => n.id);
    }

    static async open(options: {
        nodes: readonly NetworkNode[]; seed: number; clients?: boolean; clock?: Clock;
    }): Promise<ProxyNetwork> {
        const network = new ProxyNetwork(options.nodes);
        network.lifecycle.moveTo('opening');
        try {
            for (const to of options.nodes) {
                const from = options.clients === false ? [] : ['client'];
                for (const f of [...options.nodes.map((n) => n.id).filter((id) => id !== to.id), ...from]) {
                    const name = linkName(f, to.id);
                    const link = await LinkProxy.open({
                        name, target: to.target, seed: options.seed, ...(options.clock ? { clock: options.clock } : {}),
                    });
                    network.links.set(name, link);
                }
            }
        } catch (error) {
            await Promise.all([...network.links.values()].map((l) => l.close()));
            network.lifecycle.moveTo('failed');
            throw error;
        }
        network.lifecycle.moveTo('open');
        return network;
    }

    /** The link `from` → `to`; `from` may be 'client'. */
    link(from: string, to: string): LinkProxy {
        const link = this.links.get(linkName(from, to));
        assert(link !== undefined, `no link ${from}->${to}`);
        return link;
    }

    addressFor(from: string, to: string): Endpoint {
        return this.link(from, to).address;
    }

    clientAddress(to: string): Endpoint {
        return this.link('client', to).address;
    }

    allLinks(): LinkProxy[] {
        return [...this.links.values()];
    }

    /** Sets the mode of the links between nodes (both directions) that `cut(a, b)` selects. */
    private setPeerLinks(cut: (from: string, to: string) => boolean, mode: LinkMode): void {
        this.lifecycle.assertOpen();
        for (const from of this.nodeIds) {
            for (const to of this.nodeIds) {
                if (from !== to && cut(from, to)) this.link(from, to).setMode(mode);
            }
        }
    }

    /** Every link back to pass. */
    heal(): void {
        this.lifecycle.assertOpen();
        for (const link of this.links.values()) link.setMode(PASS);
    }

    /** Cuts `node` from every other node (and from clients when `clients` is true). */
    isolate(node: string, options: { clients?: boolean; mode?: CutMode } = {}): void {
        const mode = options.mode ?? BLACK_HOLE;
        this.setPeerLinks((a, b) => a === node || b === node, mode);
        if (options.clients === true) this.link('client', node).setMode(mode);
    }

    /** Nodes talk only within their group; every node must be in exactly one group. */
    partition(groups: readonly (readonly string[])[], mode: CutMode = BLACK_HOLE): void {
        const groupOf = new Map<string, number>();
        groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
        assert(this.nodeIds.every((id) => groupOf.has(id)) && groupOf.size === this.nodeIds.length,
            'partition groups must cover every node once');
        this.setPeerLinks((a, b) => groupOf.get(a) !== groupOf.get(b), mode);
    }

    /** A random majority and minority (seeded); returns [majority, minority]. */
    majorityMinority(random: SeededRandom, mode: CutMode = BLACK_HOLE): [string[], string[]] {
        const shuffled = random.shuffle([...this.nodeIds]);
        const majority = shuffled.slice(0, Math.floor(shuffled.length / 2) + 1);
        const minority = shuffled.slice(majority.length);
        this.partition([majority, minority], mode);
        return [majority, minority];
    }

    /**
     * Jepsen's bridge: two halves that cannot talk to each other, and one node that talks to
     * both. `left` and `right` exclude the bridge node.
     */
    bridge(bridge: string, left: readonly string[], right: readonly string[], mode: CutMode = BLACK_HOLE): void {
        const l = new Set(left);
        const r = new Set(right);
        assert(!l.has(bridge) && !r.has(bridge), 'the bridge belongs to neither half');
        this.setPeerLinks((a, b) => (l.has(a) && r.has(b)) || (r.has(a) && l.has(b)), mode);
    }

    /** `from` can no longer reach `to`; `to` still reaches `from`. */
    oneWay(from: string, to: string, mode: CutMode = BLACK_HOLE): void {
        this.lifecycle.assertOpen();
        this.link(from, to).setMode(mode);
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            await Promise.all([...this.links.values()].map((l) => l.close()));
        });
    }
}

function linkName(from: string, to: string): string {
    return `${from}->${to}`;
}
