// The fault injector of the chaos phase. Each fault type enabled for the seed runs its own
// chain of events at exponentially distributed intervals: partitions of several shapes
// (isolate one, isolate the leader, majority/minority, bridge, random links; symmetric or
// asymmetric), crashes with restarts from the durable disk, membership changes (add a spare,
// assign voter/standby/spare, remove — the leader included) and leadership transfers.

import { SeededRandom } from '../../src/lib/random.js';
import type { MembershipChange } from '../../src/raft/api.js';
import type { Role } from '../../src/raft/types.js';
import { exponential } from './distributions.js';
import type { SimNode } from './node.js';
import type { Simulation } from './simulation.js';
import { EventKind } from './types.js';

type Link = readonly [number, number];

export class Nemesis {
    private readonly sim: Simulation;
    private readonly random: SeededRandom;
    private requestIdNext = 1_000_000_000;

    constructor(sim: Simulation) {
        this.sim = sim;
        this.random = sim.random.fork('nemesis');
    }

    start(): void {
        const o = this.sim.options;
        if (o.partitionMeanIntervalMs > 0) this.every(o.partitionMeanIntervalMs, () => this.partitionStep());
        if (o.crashMeanIntervalMs > 0) this.every(o.crashMeanIntervalMs, () => this.crashStep());
        if (o.membershipMeanIntervalMs > 0) this.every(o.membershipMeanIntervalMs, () => this.membershipStep());
        if (o.transferMeanIntervalMs > 0) this.every(o.transferMeanIntervalMs, () => this.transferStep());
    }

    private every(meanMs: number, action: () => void): void {
        this.sim.schedule(exponential(this.random, meanMs), EventKind.nemesis, 0, () => {
            if (this.sim.phase !== 'chaos') return;
            action();
            this.every(meanMs, action);
        });
    }

    private liveNodes(): SimNode[] {
        return [...this.sim.nodes.values()].filter((n) => n.isUp);
    }

    /** The live node that claims leadership in the highest term. */
    leader(): SimNode | undefined {
        let best: SimNode | undefined;
        for (const node of this.sim.nodes.values()) {
            if (node.isLeader && (best === undefined || node.term > best.term)) best = node;
        }
        return best;
    }

    // ----- partitions ------------------------------------------------------------------------

    private partitionStep(): void {
        const network = this.sim.network;
        if (network.description !== 'none' && this.random.chance(0.5)) {
            this.sim.trace(`heal partition ${network.description}`);
            network.heal();
            return;
        }
        const ids = [...this.sim.nodes.values()].filter((n) => !n.isRetired).map((n) => n.id);
        if (ids.length < 2) return;
        const asymmetric = this.random.chance(this.sim.options.partitionAsymmetricProbability);
        // Isolating the leader is the most productive shape (stale leaders, divergent logs), so
        // it is drawn most often; two in a row also hand the old leader back to a majority.
        const shape = this.random.pick(['isolate-one', 'isolate-leader', 'isolate-leader', 'isolate-leader', 'split',
            'split', 'bridge', 'random-links']);
        const links: Link[] = [];
        const cut = (a: readonly number[], b: readonly number[], oneWay: boolean): void => {
            for (const x of a) {
                for (const y of b) {
                    links.push([x, y]);
                    if (!oneWay) links.push([y, x]);
                }
            }
        };
        const shuffled = this.random.shuffle([...ids]);
        let description: string;
        if (shape === 'isolate-one' || shape === 'isolate-leader') {
            const anyone = shuffled[0] as number;
            const victim = shape === 'isolate-leader' ? (this.leader()?.id ?? anyone) : anyone;
            const rest = ids.filter((id) => id !== victim);
            if (asymmetric && this.random.chance(0.5)) cut(rest, [victim], true);
            else cut([victim], rest, asymmetric);
            description = `${shape} ${victim}${asymmetric ? ' (one way)' : ''}`;
        } else if (shape === 'split' || ids.length < 3) {
            const minority = 1 + this.random.int(Math.max(1, Math.floor(ids.length / 2)));
            const a = shuffled.slice(0, minority);
            const b = shuffled.slice(minority);
            cut(a, b, asymmetric);
            description = `split ${a.join(',')} | ${b.join(',')}${asymmetric ? ' (one way)' : ''}`;
        } else if (shape === 'bridge') {
            const bridge = shuffled[0] as number;
            const others = shuffled.slice(1);
            const half = 1 + this.random.int(others.length - 1);
            const a = others.slice(0, half);
            const b = others.slice(half);
            cut(a, b, asymmetric);
            description = `bridge ${bridge} between ${a.join(',')} and ${b.join(',')}`;
        } else {
            for (const x of ids) {
                for (const y of ids) {
                    if (x !== y && this.random.chance(0.3)) links.push([x, y]);
                }
            }
            description = `random links ${links.map(([x, y]) => `${x}>${y}`).join(' ')}`;
        }
        this.installPartition(links, description);
    }

    /** Replaces the current partition (healing it) with `links` blocked, for a random duration. */
    private installPartition(links: readonly Link[], description: string): void {
        const network = this.sim.network;
        const generation = network.partition(links, description);
        this.sim.counters.partitions++;
        this.sim.trace(`partition ${description}`);
        const duration = exponential(this.random, this.sim.options.partitionMeanDurationMs);
        this.sim.schedule(duration, EventKind.nemesis, 0, () => {
            if (network.generation !== generation) return;
            this.sim.trace(`heal partition ${description}`);
            network.heal();
        });
    }

    // ----- crashes ---------------------------------------------------------------------------

    private crashStep(): void {
        const live = this.liveNodes();
        if (live.length === 0) return;
        const leader = this.leader();
        const victim = leader !== undefined && this.random.chance(this.sim.options.crashLeaderBias)
            ? leader
            : this.random.pick(live);
        this.crashAndRestart(victim);
    }

    /**
     * Some seeds kill fresh leaders shortly after their election: the leader has replicated a
     * part of its log (old-term entries first, then its no-op) when it dies — the schedule of
     * the Raft paper's Figure 8, which a uniform crash rate almost never produces.
     */
    onLeaderElected(node: SimNode): void {
        const o = this.sim.options;
        if (this.sim.phase !== 'chaos' || o.newLeaderCrashProbability === 0) return;
        if (!this.random.chance(o.newLeaderCrashProbability)) return;
        const incarnation = node.incarnation;
        const delay = exponential(this.random, o.newLeaderCrashDelayMeanMs);
        // Crashing loses nothing already sent; isolating also drops what is still in flight
        // (the partition applies at delivery), so the new leader's no-op may reach nobody.
        const isolate = this.random.chance(0.5);
        this.sim.schedule(delay, EventKind.nemesis, node.id, () => {
            if (this.sim.phase !== 'chaos' || node.incarnation !== incarnation || !node.isUp) return;
            if (!isolate) {
                this.crashAndRestart(node);
                return;
            }
            const links: Link[] = [];
            for (const other of this.sim.nodes.values()) {
                if (other.id !== node.id && !other.isRetired) links.push([node.id, other.id], [other.id, node.id]);
            }
            this.installPartition(links, `isolate new leader ${node.id}`);
        });
    }

    private crashAndRestart(victim: SimNode): void {
        victim.crash();
        this.scheduleRestart(victim);
    }

    /** Restarts a node that went down (crash or storage failure) after a while, during the chaos phase. */
    scheduleRestart(victim: SimNode): void {
        const down = exponential(this.random, this.sim.options.crashMeanDownMs);
        this.sim.schedule(down, EventKind.restart, victim.id, () => {
            if (victim.isUp || victim.isStarting || victim.isRetired || this.sim.phase !== 'chaos') return;
            this.sim.trace(`restart node ${victim.id}`);
            victim.start();
        });
    }

    // ----- membership ------------------------------------------------------------------------

    private membershipStep(): void {
        const leader = this.leader();
        if (leader === undefined) return;
        const servers = leader.configuration.servers;
        if (servers.length === 0) return;
        const voters = servers.filter((s) => s.role === 'voter');
        const existing = [...this.sim.nodes.values()].filter((n) => !n.isRetired).length;
        const x = this.random.float();
        const requestId = this.requestIdNext++;
        let change: MembershipChange;
        let added: SimNode | undefined;
        if (x < 0.3 && existing < this.sim.options.nodesMax) {
            added = this.sim.addNode();
            change = { kind: 'add', id: added.nodeId, address: added.address };
        } else if (x < 0.75) {
            const server = this.random.pick(servers);
            const roles: Role[] = (['voter', 'voter', 'standby', 'spare'] as Role[]).filter((r) => r !== server.role);
            const role = this.random.pick(roles);
            if (server.role === 'voter' && voters.length <= 1) return;
            change = { kind: 'assign', id: server.id, role };
        } else {
            const removeLeader = this.random.chance(0.25);
            const server = removeLeader
                ? servers.find((s) => s.id === leader.nodeId) ?? this.random.pick(servers)
                : this.random.pick(servers);
            if (server.role === 'voter' && voters.length <= 1) return;
            change = { kind: 'remove', id: server.id };
        }
        const accepted = leader.changeMembership(requestId, change);
        this.sim.trace(`node ${leader.id} membership ${describeChange(change)} accepted=${accepted}`);
        if (!accepted) {
            this.sim.counters.membershipRefused++;
            added?.retire();
        }
    }

    /** A change's outcome, settled by the leader that proposed it. */
    onChangeOutcome(node: SimNode, change: MembershipChange | undefined, ok: boolean): void {
        this.sim.trace(`node ${node.id} membership ${change === undefined ? '?' : describeChange(change)} ok=${ok}`);
        if (!ok || change === undefined) return;
        this.sim.counters.membershipChanges++;
        if (change.kind === 'remove') {
            if (change.id === node.nodeId) this.sim.counters.leaderRemoved++;
            // The operator stops the removed server shortly after (never inside the leader's drive).
            const removed = this.sim.nodes.get(Number(change.id));
            if (removed !== undefined) this.sim.schedule(0, EventKind.nemesis, removed.id, () => removed.retire());
        }
    }

    // ----- leadership transfer ---------------------------------------------------------------

    private transferStep(): void {
        const leader = this.leader();
        if (leader === undefined) return;
        const voters = leader.configuration.servers.filter((s) => s.role === 'voter' && s.id !== leader.nodeId);
        const target = voters.length === 0 || this.random.chance(0.3) ? 0n : this.random.pick(voters).id;
        const accepted = leader.transferLeadership(this.requestIdNext++, target);
        this.sim.trace(`node ${leader.id} transfer to ${target} accepted=${accepted}`);
    }
}

function describeChange(change: MembershipChange): string {
    if (change.kind === 'add') return `add ${change.id}`;
    if (change.kind === 'assign') return `assign ${change.id} ${change.role}`;
    return `remove ${change.id}`;
}
