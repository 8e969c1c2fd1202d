// One deterministic simulated run: a seed → swarm options → a cluster of simulated nodes on a
// simulated network and disks, clients, and a nemesis, all driven by one event agenda in
// virtual time. A chaos phase checks safety after every event; then the network heals, every
// node comes back, and the cluster must elect a single leader and converge within bounds.
//
// Everything random comes from named streams forked from the seed (options, network, disk,
// faults, clients, each core incarnation), so changing one subsystem's draws leaves the
// others' alone, and one seed always gives the same trace hash.
//
// Disks are the real LogStore on SimFs (disk.ts), which is asynchronous. The run stays
// deterministic because nothing in it waits on real time or I/O: SimFs settles in microtasks,
// and a sync's latency and the store's group-commit turn are events of the agenda. After an
// event that started promise chains, the loop lets every pending microtask run (one
// setImmediate turn, before which Node drains the microtask queue) before it takes the next
// event. A failure raised inside a chain is kept (guard()) and rethrown by the loop.

import type { StorageError } from '../../src/lib/errors.js';
import { SeededRandom } from '../../src/lib/random.js';
import type { InstallSnapshot } from '../../src/raft/messages.js';
import type { Configuration } from '../../src/raft/types.js';
import { Checker } from './checker.js';
import { Clients } from './clients.js';
import type { CoreFactory } from './core-adapter.js';
import type { DiskHost, StoredSnapshot } from './disk.js';
import { exponential } from './distributions.js';
import { EventQueue } from './event-queue.js';
import { SimFailure } from './failure.js';
import type { FailureKind } from './failure.js';
import { finish, hex, mix32, mixNumber } from './hash.js';
import { Nemesis } from './nemesis.js';
import { SimNetwork } from './network.js';
import { SimNode } from './node.js';
import { describeOptions, HEALED_NETWORK_MEAN_MS, swarmOptions } from './options.js';
import type { SimOptions } from './options.js';
import { EventKind, emptyCounters } from './types.js';
import type { Counters } from './types.js';

/** A run that has not finished after this many events is a liveness failure (an event storm). */
const EVENTS_MAX = 3_000_000;
const LIVENESS_CHECK_MS = 50;

export interface SimResult {
    readonly seed: number;
    readonly ok: boolean;
    readonly kind: FailureKind | undefined;
    readonly message: string | undefined;
    readonly traceHash: string;
    readonly simTimeMs: number;
    readonly wallMs: number;
    readonly counters: Counters;
    readonly options: string;
    readonly leaderAfterHealMs: number | undefined;
    readonly convergedAfterHealMs: number | undefined;
    readonly ops: number;
}

export type Phase = 'chaos' | 'healed' | 'done';

/** Lets every pending microtask run (the simulated disks' promise chains) before the next event. */
function settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

export class Simulation implements DiskHost {
    readonly options: SimOptions;
    readonly factory: CoreFactory;
    readonly random: SeededRandom;
    readonly diskRandom: SeededRandom;
    readonly faultRandom: SeededRandom;
    readonly nodes = new Map<number, SimNode>();
    readonly counters = emptyCounters();
    readonly checker: Checker;
    readonly network: SimNetwork;
    readonly clients: Clients;
    readonly nemesis: Nemesis;
    now = 0;
    phase: Phase = 'chaos';
    traceHash = 0x5eed;
    /** Trace every message too (only with a trace sink). */
    traceMessages = false;
    private readonly queue = new EventQueue();
    private nodeIdNext = 1;
    private readonly traceSink: ((line: string) => void) | undefined;
    private healAt = 0;
    private firstStableAt: number | undefined;
    private convergedAt: number | undefined;
    private progressSeen = -1;
    private progressAt = 0;
    /** Promise chains were started since the last settle. */
    private asyncPending = false;
    /** The first failure raised inside a promise chain (rethrown by the loop). */
    private failure: unknown = undefined;

    constructor(options: SimOptions, factory: CoreFactory, traceSink?: (line: string) => void,
        traceMessages = false) {
        this.options = options;
        this.factory = factory;
        this.random = new SeededRandom(options.seed);
        this.diskRandom = this.random.fork('disk');
        this.faultRandom = this.random.fork('faults');
        this.traceSink = traceSink;
        this.traceMessages = traceSink !== undefined && traceMessages;
        this.checker = new Checker(this.nodes, this.counters);
        this.network = new SimNetwork(this, options.network);
        this.clients = new Clients(this);
        this.nemesis = new Nemesis(this);
    }

    schedule(delayMs: number, kind: EventKind, node: number, run: () => void): void {
        this.queue.push(this.now + Math.max(0, delayMs), kind, node, run);
    }

    scheduleAt(time: number, kind: EventKind, node: number, run: () => void): void {
        this.queue.push(Math.max(this.now, time), kind, node, run);
    }

    // ----- the disks' time and failures (DiskHost) ---------------------------------------------

    noteAsync(): void {
        this.asyncPending = true;
    }

    syncLatency(nodeId: number, alive: () => boolean): Promise<void> {
        const o = this.options;
        const latency = o.diskLatencyMinMs + exponential(this.diskRandom, o.diskLatencyMeanMs);
        return new Promise((resolve) => {
            this.schedule(latency, EventKind.disk, nodeId, () => {
                if (!alive()) return;
                this.asyncPending = true;
                resolve();
            });
        });
    }

    turn(nodeId: number, alive: () => boolean): Promise<void> {
        return new Promise((resolve) => {
            this.schedule(0, EventKind.diskTurn, nodeId, () => {
                if (!alive()) return;
                this.asyncPending = true;
                resolve();
            });
        });
    }

    onStorageFailure(nodeId: number, error: StorageError): void {
        this.guard(() => {
            const node = this.nodes.get(nodeId);
            if (node === undefined || !node.isUp) return;
            node.storageFailed(error);
            this.nemesis.scheduleRestart(node);
        });
    }

    /** Runs `fn` from a promise chain: its failure ends the run (rethrown by the loop), and nothing runs after one. */
    guard(fn: () => void): void {
        if (this.failure !== undefined) return;
        try {
            fn();
        } catch (error) {
            this.failure = error;
        }
    }

    /** Some seeds make one sync (or write) of this incarnation fail: the node must stop, never go on. */
    armStorageFault(node: SimNode): void {
        const p = this.options.storageFaultProbability;
        if (this.phase !== 'chaos' || p === 0 || !this.faultRandom.chance(p)) return;
        const onWrite = this.faultRandom.chance(0.25);
        node.disk.fs.injectFault(onWrite
            ? { at: this.faultRandom.int(200), kinds: ['write', 'writeDurable'], code: 'ENOSPC' }
            : { at: this.faultRandom.int(60), kinds: ['datasync', 'sync', 'fsyncDir', 'writeDurableSync'],
                code: 'EIO' });
    }

    trace(line: string): void {
        if (this.traceSink !== undefined) this.traceSink(`${this.now.toFixed(3).padStart(10)} ${line}`);
    }

    /** A brand-new node with an empty disk (to be added to the cluster as a spare). */
    addNode(): SimNode {
        const node = new SimNode(this, this.nodeIdNext++);
        this.nodes.set(node.id, node);
        node.start();
        return node;
    }

    /** The leader's transport streams a snapshot, then steps InstallSnapshot into the follower. */
    streamSnapshot(from: SimNode, to: bigint, stored: StoredSnapshot, message: InstallSnapshot): void {
        const toId = Number(to);
        const incarnation = from.incarnation;
        const network = this.network;
        const failed = network.isBlocked(from.id, toId) || this.faultRandom.chance(network.options.lossProbability * 3);
        const duration = network.delay() + network.delay() + network.delay();
        this.schedule(duration, EventKind.snapshotStream, toId, () => {
            const target = this.nodes.get(toId);
            const ok = !failed && target !== undefined && target.isUp && !network.isBlocked(from.id, toId);
            if (ok) {
                target.receiveSnapshot(stored.data, message);
            } else {
                this.counters.snapshotStreamsFailed++;
            }
            this.schedule(network.delay(), EventKind.snapshotReport, from.id, () => {
                if (from.incarnation !== incarnation || !from.isUp) return;
                from.coreOf().reportSnapshot(to, ok);
                from.drive();
            });
        });
    }

    async run(): Promise<SimResult> {
        const started = performance.now();
        let kind: FailureKind | undefined;
        let message: string | undefined;
        try {
            await this.setup();
            await this.loop();
        } catch (error) {
            if (error instanceof SimFailure) {
                kind = error.kind;
                message = error.message;
            } else {
                kind = 'crash';
                message = error instanceof Error ? (error.stack ?? error.message) : String(error);
            }
            this.trace(`FAILURE (${kind}): ${message}`);
        }
        // Nothing of this run may run later (its promise chains see the failure and stop).
        this.failure ??= new SimFailure('crash', 'the run is over');
        for (const node of this.nodes.values()) {
            this.traceHash = mix32(mixNumber(this.traceHash, node.sm.appliedIndex), node.sm.stateHash);
        }
        return {
            seed: this.options.seed,
            ok: kind === undefined,
            kind,
            message,
            traceHash: hex(finish(this.traceHash)),
            simTimeMs: this.now,
            wallMs: performance.now() - started,
            counters: this.counters,
            options: describeOptions(this.options),
            leaderAfterHealMs: this.firstStableAt === undefined ? undefined : this.firstStableAt - this.healAt,
            convergedAfterHealMs: this.convergedAt === undefined ? undefined : this.convergedAt - this.healAt,
            ops: this.clients.history.length,
        };
    }

    private async setup(): Promise<void> {
        const ids: number[] = [];
        for (let i = 0; i < this.options.clusterSize; i++) ids.push(this.nodeIdNext++);
        const configuration: Configuration = {
            servers: ids.map((id) => ({ id: BigInt(id), address: `sim-${id}`, role: 'voter' as const })),
        };
        const bootstrap = this.factory.bootstrap(configuration);
        for (const id of ids) {
            const node = new SimNode(this, id);
            this.nodes.set(id, node);
            await node.bootstrap(bootstrap);
        }
        for (const node of this.nodes.values()) node.start();
        this.clients.start();
        this.nemesis.start();
        this.schedule(this.options.chaosMs, EventKind.heal, 0, () => this.heal());
    }

    private async loop(): Promise<void> {
        const queue = this.queue;
        while (this.phase !== 'done') {
            if (this.asyncPending) {
                this.asyncPending = false;
                await settle();
                if (this.failure === undefined && this.options.storageFaultProbability > 0) this.checkStopped();
            }
            if (this.failure !== undefined) throw this.failure;
            const event = queue.pop();
            if (event === undefined) throw new SimFailure('liveness', 'the agenda ran empty');
            this.now = event.time;
            const counters = this.counters;
            counters.events++;
            if (counters.events > EVENTS_MAX) {
                throw new SimFailure('liveness', `more than ${EVENTS_MAX} events (event storm)`);
            }
            this.traceHash = mix32(mix32(mixNumber(this.traceHash, event.time), event.kind), event.node);
            event.run();
        }
        if (this.asyncPending) await settle();
        if (this.failure !== undefined) throw this.failure;
    }

    /** A node whose file system refused an operation (an injected fault) must have stopped. */
    private checkStopped(): void {
        for (const node of this.nodes.values()) {
            const fired = node.disk.fs.faultFired;
            if (fired === undefined || !node.isUp) continue;
            if (node.disk.store?.failure === undefined) {
                throw new SimFailure('safety', `node ${node.id}: its disk failed (${fired.kind} ${fired.path}) but ` +
                    `the log store did not stop`);
            }
        }
    }

    private heal(): void {
        this.phase = 'healed';
        this.healAt = this.now;
        this.network.heal();
        const o = this.options.network;
        this.network.options = {
            delayMinMs: o.delayMinMs,
            delayMeanMs: Math.min(o.delayMeanMs, HEALED_NETWORK_MEAN_MS),
            slowProbability: 0,
            lossProbability: 0,
            duplicateProbability: 0,
        };
        this.trace('HEAL: network reliable, every node up');
        for (const node of this.nodes.values()) {
            node.disk.fs.clearFaults();
            if (!node.isUp && !node.isStarting && !node.isRetired) node.start();
        }
        this.schedule(this.options.healedClientMs, EventKind.heal, 0, () => {
            this.clients.isIssuing = false;
        });
        this.scheduleLivenessCheck();
    }

    private scheduleLivenessCheck(): void {
        this.schedule(LIVENESS_CHECK_MS, EventKind.check, 0, () => {
            this.checkLiveness();
            if (this.phase !== 'done') this.scheduleLivenessCheck();
        });
    }

    private checkLiveness(): void {
        const elapsed = this.now - this.healAt;
        const leader = this.nemesis.leader();
        const live = [...this.nodes.values()].filter((n) => n.isUp);
        const leaders = live.filter((n) => n.role === 'leader');
        let members: SimNode[] = [];
        let stable = false;
        if (leader !== undefined && leaders.length === 1) {
            members = leader.configuration.servers
                .filter((s) => s.role !== 'spare')
                .map((s) => this.nodes.get(Number(s.id)))
                .filter((n): n is SimNode => n !== undefined);
            stable = members.every((n) => n.isUp && n.term === leader.term && n.leader === leader.nodeId);
        }
        if (stable && this.firstStableAt === undefined) this.firstStableAt = this.now;
        if (this.firstStableAt === undefined && elapsed > this.options.leaderBoundMs) {
            throw new SimFailure('liveness', `no single stable leader ${elapsed.toFixed(0)} ms after the heal: ` +
                this.describeNodes());
        }
        if (stable && leader !== undefined && this.isConverged(leader, members)) {
            this.convergedAt = this.now;
            this.clients.checkAcknowledgedWrites(leader.commitIndex);
            this.phase = 'done';
            this.trace(`CONVERGED at commit ${leader.commitIndex}`);
            return;
        }
        // Convergence may take long after a chaos phase that left a large backlog (slow disks,
        // one entry per message): the bound runs from the last progress (TigerBeetle's VOPR),
        // capped at ten bounds after the heal.
        let progress = 0;
        for (const node of this.nodes.values()) {
            progress += node.sm.appliedIndex + node.commitIndex + node.persistedIndex;
        }
        if (progress !== this.progressSeen) {
            this.progressSeen = progress;
            this.progressAt = this.now;
        }
        const stalled = this.now - Math.max(this.healAt, this.progressAt);
        if (stalled > this.options.convergeBoundMs || elapsed > 10 * this.options.convergeBoundMs) {
            throw new SimFailure('liveness', `not converged ${elapsed.toFixed(0)} ms after the heal, no progress ` +
                `for ${stalled.toFixed(0)} ms (clients pending ${this.clients.pendingCount}): ${this.describeNodes()}`);
        }
    }

    private isConverged(leader: SimNode, members: readonly SimNode[]): boolean {
        if (this.clients.isIssuing || this.clients.pendingCount > 0) return false;
        const commit = leader.commitIndex;
        if (commit !== leader.lastIndex) return false;
        for (const node of members) {
            if (node.commitIndex !== commit || node.sm.appliedIndex !== commit) return false;
            if (node.sm.stateHash !== leader.sm.stateHash) return false;
        }
        return leader.sm.appliedIndex === commit;
    }

    describeNodes(): string {
        return [...this.nodes.values()].filter((n) => !n.isRetired).map((n) => n.describe()).join('; ');
    }
}

export function simulate(seed: number, factory: CoreFactory, traceSink?: (line: string) => void,
    traceMessages = false): Promise<SimResult> {
    return new Simulation(swarmOptions(seed), factory, traceSink, traceMessages).run();
}
