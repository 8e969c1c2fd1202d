// The simulated network: every message gets its own delay (min + exponential, with an
// occasional slow path, so reordering emerges), may be lost or duplicated, and is dropped when
// a partition blocks its directed link at send time or at arrival. Partitions are a matrix of
// blocked directed links, so asymmetric shapes are just half of a symmetric one.

import type { Message } from '../../src/raft/messages.js';
import { SeededRandom } from '../../src/lib/random.js';
import type { NetworkOptions } from './options.js';
import { exponential } from './distributions.js';
import type { SimNode } from './node.js';
import type { Simulation } from './simulation.js';
import { EventKind } from './types.js';
import { mix32, mixNumber } from './hash.js';

const NODES_STRIDE = 64;

const MESSAGE_CODES: Readonly<Record<Message['type'], number>> = {
    appendEntries: 1,
    appendEntriesResponse: 2,
    requestVote: 3,
    requestVoteResponse: 4,
    timeoutNow: 5,
    installSnapshot: 6,
};

export class SimNetwork {
    options: NetworkOptions;
    private blocked = new Uint8Array(NODES_STRIDE * NODES_STRIDE);
    /** Bumped on every partition change so a scheduled heal only heals its own partition. */
    generation = 0;
    description = 'none';
    private readonly sim: Simulation;
    private readonly random: SeededRandom;

    constructor(sim: Simulation, options: NetworkOptions) {
        this.sim = sim;
        this.options = options;
        this.random = sim.random.fork('network');
    }

    isBlocked(from: number, to: number): boolean {
        return this.blocked[from * NODES_STRIDE + to] === 1;
    }

    /** Installs a new partition: `links` are the blocked directed (from, to) pairs. */
    partition(links: readonly (readonly [number, number])[], description: string): number {
        this.blocked.fill(0);
        for (const [from, to] of links) this.blocked[from * NODES_STRIDE + to] = 1;
        this.generation++;
        this.description = description;
        return this.generation;
    }

    heal(): void {
        this.blocked.fill(0);
        this.generation++;
        this.description = 'none';
    }

    /** True when `node` can exchange messages both ways with a majority of its configuration's voters. */
    reachesMajority(node: SimNode): boolean {
        let voters = 0;
        let reached = 0;
        for (const server of node.configuration.servers) {
            if (server.role !== 'voter') continue;
            voters++;
            const id = Number(server.id);
            const peer = this.sim.nodes.get(id);
            if (id === node.id) {
                reached++;
            } else if (peer !== undefined && peer.isUp && !this.isBlocked(node.id, id) &&
                !this.isBlocked(id, node.id)) {
                reached++;
            }
        }
        return reached * 2 > voters;
    }

    send(from: SimNode, message: Message): void {
        const sim = this.sim;
        const counters = sim.counters;
        const to = Number(message.to);
        counters.messagesSent++;
        if (sim.traceMessages) sim.trace(`send ${describeMessage(message)}`);
        sim.traceHash = mixNumber(mix32(mix32(sim.traceHash, MESSAGE_CODES[message.type]), to), message.term);
        if (this.isBlocked(from.id, to) || this.random.chance(this.options.lossProbability)) {
            counters.messagesDropped++;
            if (this.isBlocked(from.id, to) && this.random.chance(0.3)) this.reportUnreachable(from, message.to);
            return;
        }
        this.schedule(from.id, to, message, false);
        if (this.random.chance(this.options.duplicateProbability)) this.schedule(from.id, to, message, true);
    }

    private schedule(from: number, to: number, message: Message, duplicate: boolean): void {
        const delay = this.delay();
        this.sim.schedule(delay, EventKind.deliver, to, () => {
            const target = this.sim.nodes.get(to);
            if (target === undefined || !target.isUp || this.isBlocked(from, to)) {
                this.sim.counters.messagesDropped++;
                return;
            }
            if (duplicate) this.sim.counters.duplicatesDelivered++;
            if (this.sim.traceMessages) {
                this.sim.trace(`deliver ${describeMessage(message)}${duplicate ? ' (dup)' : ''}`);
            }
            target.step(message);
        });
    }

    delay(): number {
        const o = this.options;
        const mean = this.random.chance(o.slowProbability) ? o.delayMeanMs * 10 : o.delayMeanMs;
        return o.delayMinMs + exponential(this.random, mean);
    }

    /** The sender's transport notices the peer is unreachable (connection refused/reset). */
    private reportUnreachable(from: SimNode, to: bigint): void {
        const incarnation = from.incarnation;
        this.sim.schedule(this.delay(), EventKind.unreachable, from.id, () => {
            if (incarnation !== from.incarnation || !from.isUp) return;
            from.coreOf().reportUnreachable(to);
            from.drive();
        });
    }
}

export function describeMessage(m: Message): string {
    const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
    switch (m.type) {
        case 'appendEntries':
            return `${head} prev=${m.prevIndex}/${m.prevTerm} entries=[${m.entries.map((e) => `${e.index}/${e.term}`)
                .join(',')}] commit=${m.commit} round=${m.readRound}`;
        case 'appendEntriesResponse':
            return `${head} ${m.success ? 'ok' : 'reject'} index=${m.index} hint=${m.hintIndex}/${m.hintTerm} ` +
                `round=${m.readRound}`;
        case 'requestVote':
            return `${head} last=${m.lastIndex}/${m.lastTerm}${m.preVote ? ' pre' : ''}` +
                `${m.transfer ? ' transfer' : ''}`;
        case 'requestVoteResponse':
            return `${head} ${m.granted ? 'granted' : 'rejected'}${m.preVote ? ' pre' : ''}`;
        case 'timeoutNow':
            return head;
        case 'installSnapshot':
            return `${head} snapshot=${m.meta.index}/${m.meta.term}`;
    }
}
