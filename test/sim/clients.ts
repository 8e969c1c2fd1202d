// Simulated clients. Each client has at most one request outstanding; it aims at a node that
// claims to lead (possibly a deposed one — exactly what stale-read bugs need) or at a random live
// node, writes unique values or reads a key, and records every request in the history with its
// outcome: ok, fail (definitely not done) or unknown (timeout, crash, leadership lost).

import { SeededRandom } from '../../src/lib/random.js';
import { safety } from './failure.js';
import { exponential } from './distributions.js';
import type { SimNode } from './node.js';
import type { Simulation } from './simulation.js';
import { encodeCommand } from './state-machine.js';
import { EventKind } from './types.js';
import type { ClientOp, OpStatus } from './types.js';

/** Bound on one open-loop client's outstanding requests. */
const CLIENT_PENDING_MAX = 32;

export class Clients {
    readonly history: ClientOp[] = [];
    isIssuing = true;
    pendingCount = 0;
    private readonly sim: Simulation;
    private readonly random: SeededRandom;
    private opIdNext = 1;
    private readonly pendingByClient = new Map<number, number>();
    /** Open-loop clients that stopped issuing at their bound, to restart when a request ends. */
    private readonly stalled = new Set<number>();

    constructor(sim: Simulation) {
        this.sim = sim;
        this.random = sim.random.fork('clients');
    }

    start(): void {
        for (let client = 0; client < this.sim.options.clientCount; client++) this.scheduleNext(client);
    }

    private scheduleNext(client: number): void {
        if (!this.isIssuing) return;
        const think = exponential(this.random, this.sim.options.clientThinkMeanMs);
        this.sim.schedule(think, EventKind.client, 0, () => this.issue(client));
    }

    private target(): SimNode | undefined {
        const live = [...this.sim.nodes.values()].filter((n) => n.isUp);
        if (live.length === 0) return undefined;
        const leaders = live.filter((n) => n.role === 'leader');
        if (leaders.length > 0 && this.random.chance(this.sim.options.clientLeaderAimProbability)) {
            return this.random.pick(leaders);
        }
        return this.random.pick(live);
    }

    private issue(client: number): void {
        if (!this.isIssuing) return;
        const options = this.sim.options;
        if (options.clientOpenLoop) {
            // Open loop: the next request does not wait for this one (bounded per client).
            if (this.pendingOf(client) >= CLIENT_PENDING_MAX) {
                this.stalled.add(client);
                return;
            }
            this.scheduleNext(client);
        }
        const kind = this.random.chance(options.clientReadProbability) ? 'read' : 'write';
        const op: ClientOp = {
            id: this.opIdNext++,
            client,
            kind,
            key: this.random.int(options.clientKeys),
            start: this.sim.now,
            healed: this.sim.phase !== 'chaos',
            node: 0,
            incarnation: 0,
            status: 'pending',
            end: 0,
            index: 0,
            term: 0,
            prefix: 0,
            requiredIndex: 0,
            readIndex: 0,
            servedAt: 0,
            value: 0,
        };
        this.history.push(op);
        this.pendingCount++;
        this.pendingByClient.set(client, this.pendingOf(client) + 1);
        const node = this.target();
        if (node === undefined) {
            this.settle(op, 'fail');
            return;
        }
        let accepted: boolean;
        if (kind === 'write') {
            const length = 8 + this.random.int(options.commandBytesMax - 7);
            accepted = node.propose(op, encodeCommand(op.id, op.key, length));
        } else {
            accepted = node.readIndex(op);
        }
        if (!accepted) {
            if (op.status === 'pending') this.settle(op, 'fail');
            return;
        }
        this.sim.schedule(options.clientTimeoutMs, EventKind.clientTimeout, 0, () => {
            if (op.status !== 'pending') return;
            const owner = this.sim.nodes.get(op.node);
            if (owner !== undefined && owner.pendingWrites.get(op.index) === op) owner.pendingWrites.delete(op.index);
            if (owner !== undefined && owner.pendingReads.get(op.id) === op) owner.pendingReads.delete(op.id);
            this.settle(op, 'unknown');
        });
    }

    settle(op: ClientOp, status: OpStatus): void {
        if (op.status !== 'pending') return;
        safety(status !== 'pending', () => `op ${op.id} settled as pending`);
        op.status = status;
        op.end = this.sim.now;
        this.pendingCount--;
        this.pendingByClient.set(op.client, this.pendingOf(op.client) - 1);
        const counters = this.sim.counters;
        if (status === 'unknown') counters.clientUnknown++;
        else if (op.kind === 'write') status === 'ok' ? counters.writesOk++ : counters.writesFailed++;
        else status === 'ok' ? counters.readsOk++ : counters.readsFailed++;
        if (!this.sim.options.clientOpenLoop) {
            this.scheduleNext(op.client);
        } else if (this.stalled.delete(op.client)) {
            this.scheduleNext(op.client);
        }
    }

    private pendingOf(client: number): number {
        return this.pendingByClient.get(client) ?? 0;
    }

    /** End of run: every acknowledged write is in the final committed log, at its index. */
    checkAcknowledgedWrites(finalCommit: number): void {
        for (const op of this.history) {
            if (op.kind !== 'write' || op.status !== 'ok') continue;
            safety(op.index <= finalCommit,
                () => `acknowledged write ${op.id} at index ${op.index} is beyond the final commit ${finalCommit}`);
            const committed = this.sim.checker.committedPrefixAt(op.index);
            safety(committed === undefined || committed === op.prefix,
                () => `acknowledged write ${op.id} (index ${op.index}, term ${op.term}) is not in the final log`);
        }
    }
}
