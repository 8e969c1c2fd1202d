// go-dqlite `app` semantics on top of a Node (dqlite-notes.md §E, DESIGN.md §6): joining,
// role assignment and handover. This is what LXD, MicroCloud and MicroOVN rely on; the moment
// the third node joins (one voter becomes three) is where dqlite crashed in 2024, so every
// step here is bounded, cancellable, and owned by one RoleManager that close() stops.
//
// - Join: a node given join addresses asks the leader to ADD it as a spare, every retryMs,
//   until the leader accepted it (or reports it is already a member).
// - Assume (after joining, and at start): nothing while the cluster has < 3 members; a spare
//   promotes itself to voter while voters are short of the target, else to standby while
//   standbys are; if it became a voter while the cluster had exactly one voter it also
//   promotes one more member, so the third join turns 1 voter into 3.
// - Adjust (the leader, on every configuration change and every adjustIntervalMs): with < 3
//   members only the leader votes;
//   otherwise promote online standbys then spares while voters are short, demote voters the
//   leader has not heard from when a replacement is online, then the same for standbys.
//   Candidates: a failure domain not yet represented first, then lower weight.
// - Handover (close): give our voter role to an online standby or spare, transfer leadership
//   if we lead, then demote ourselves; bounded by handoverTimeoutMs.

import { systemClock } from './lib/clock.js';
import { AbortError, TqliteError } from './lib/errors.js';
import { Lifecycle } from './lib/lifecycle.js';
import { silentLogger, type Logger } from './lib/logger.js';
import { createAdminClient, type AdminClient, type NodeInfo } from './client/index.js';
import type { Node } from './node/node.js';
import type { NodeId, Role } from './raft/types.js';

export interface RoleOptions {
    /** Voters wanted (odd, ≥ 1). Default 3. */
    readonly voters?: number;
    /** Standbys wanted. Default 3. */
    readonly standbys?: number;
    /** How often the leader re-balances roles. Default 30 s (go-dqlite's). */
    readonly adjustIntervalMs?: number;
    /** Retry interval of the join request. Default 1 s. */
    readonly joinRetryMs?: number;
    /** Bound of the whole handover at close. Default 10 s. */
    readonly handoverTimeoutMs?: number;
}

const DESCRIBE_TIMEOUT_MS = 2_000;
const ASSUME_ATTEMPTS_MAX = 30;
const ADJUST_CHECK_MS = 1_000;

function delay(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal.aborted) {
            reject(new AbortError('stopped', { cause: signal.reason }));
            return;
        }
        const onAbort = (): void => {
            timer.cancel();
            reject(new AbortError('stopped', { cause: signal.reason }));
        };
        const timer = systemClock.setTimer(ms, () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
        });
        signal.addEventListener('abort', onAbort, { once: true });
    });
}

interface Metadata {
    readonly failureDomain: bigint;
    readonly weight: bigint;
}

export class RoleManager {
    private readonly lifecycle = new Lifecycle('role manager');
    private readonly controller = new AbortController();
    private readonly voters: number;
    private readonly standbys: number;
    private readonly adjustIntervalMs: number;
    private readonly joinRetryMs: number;
    private readonly handoverTimeoutMs: number;
    private running: Promise<void> | undefined;
    private readonly admin: AdminClient;

    constructor(
        private readonly node: Node,
        private readonly join: readonly string[],
        options: RoleOptions = {},
        private readonly logger: Logger = silentLogger,
    ) {
        this.voters = options.voters ?? 3;
        this.standbys = options.standbys ?? 3;
        this.adjustIntervalMs = options.adjustIntervalMs ?? 30_000;
        this.joinRetryMs = options.joinRetryMs ?? 1_000;
        this.handoverTimeoutMs = options.handoverTimeoutMs ?? 10_000;
        this.admin = createAdminClient({
            servers: [node.address, ...join],
            timeoutMs: 5_000,
            dialTimeoutMs: 1_000,
            probeTimeoutMs: 2_000,
        });
    }

    /** Starts joining (when needed) and the periodic role adjustment. */
    start(): void {
        this.lifecycle.moveTo('open');
        this.running = this.run().catch((error: unknown) => {
            if (error instanceof AbortError) return;
            this.logger.error({ err: error }, 'role manager stopped');
        });
    }

    private get signal(): AbortSignal {
        return this.controller.signal;
    }

    private async run(): Promise<void> {
        if (this.join.length > 0 && !this.isMember()) await this.joinCluster();
        // Assume can collide with another member's change ("a change is already in progress"):
        // retry it for a while rather than waiting for the leader's next periodic adjustment.
        for (let attempt = 0; attempt < ASSUME_ATTEMPTS_MAX; attempt++) {
            if (await this.tryStep('assume', () => this.assume())) break;
            await delay(this.joinRetryMs, this.signal);
        }
        // The leader adjusts roles when the configuration changed (a join, a removal, a role
        // change) and every adjustIntervalMs; the check itself is cheap and runs every second.
        let adjustedAt = -Infinity;
        let adjustedFor: unknown;
        for (;;) {
            await delay(ADJUST_CHECK_MS, this.signal);
            const status = this.node.status();
            if (status.role !== 'leader') continue;
            const now = performance.now();
            if (status.configuration === adjustedFor && now - adjustedAt < this.adjustIntervalMs) continue;
            adjustedFor = status.configuration;
            adjustedAt = now;
            await this.tryStep('adjust', () => this.adjust());
        }
    }

    private isMember(): boolean {
        return this.node.status().configuration.servers.some((s) => s.id === this.node.id);
    }

    /** Runs one step; false (logged) when it failed for a reason other than stopping. */
    private async tryStep(what: string, step: () => Promise<void>): Promise<boolean> {
        try {
            await step();
            return true;
        } catch (error) {
            if (error instanceof AbortError || this.signal.aborted) throw error;
            this.logger.warn({ err: error, step: what }, 'role step failed; will retry later');
            return false;
        }
    }

    private async joinCluster(): Promise<void> {
        for (;;) {
            try {
                await this.admin.add(this.node.id, this.node.address, { signal: this.signal });
                this.logger.info({ id: String(this.node.id) }, 'joined the cluster as a spare');
                return;
            } catch (error) {
                if (this.signal.aborted) throw new AbortError('stopped');
                const members = await this.admin.cluster({ signal: this.signal }).catch(() => []);
                if (members.some((m) => m.id === this.node.id)) return;
                this.logger.debug({ err: error }, 'join failed; retrying');
            }
            await delay(this.joinRetryMs, this.signal);
        }
    }

    /** The members that answer DESCRIBE quickly (go-dqlite's online check), with their metadata. */
    private async online(members: readonly NodeInfo[]): Promise<Map<NodeId, Metadata>> {
        const online = new Map<NodeId, Metadata>();
        await Promise.all(members.map(async (m) => {
            try {
                const metadata = await this.admin.describe(m.address,
                    { signal: this.signal, timeoutMs: DESCRIBE_TIMEOUT_MS });
                online.set(m.id, metadata);
            } catch {
                // offline (or too slow): not a candidate
            }
        }));
        return online;
    }

    private async assume(): Promise<void> {
        const members = await this.admin.cluster({ signal: this.signal });
        const self = members.find((m) => m.id === this.node.id);
        if (members.length < 3 || self === undefined || self.role !== 'spare') return;
        const online = await this.online(members);
        const count = (role: Role): number => members.filter((m) => m.role === role && online.has(m.id)).length;
        const voters = count('voter');
        if (voters < this.voters) {
            await this.admin.assign(this.node.id, 'voter', { signal: this.signal, timeoutMs: 60_000 });
            this.logger.info({ voters: voters + 1 }, 'promoted ourselves to voter');
            if (voters === 1) {
                const [other] = this.order(members.filter((m) => m.id !== this.node.id && m.role !== 'voter'
                    && online.has(m.id)), members, online);
                if (other !== undefined) {
                    await this.admin.assign(other.id, 'voter', { signal: this.signal, timeoutMs: 60_000 });
                    this.logger.info({ id: String(other.id) }, 'promoted a second voter');
                }
            }
        } else if (count('standby') < this.standbys) {
            await this.admin.assign(this.node.id, 'standby', { signal: this.signal, timeoutMs: 60_000 });
        }
    }

    /** Candidate order: a failure domain not yet among the voters first, then lower weight. */
    private order(candidates: readonly NodeInfo[], members: readonly NodeInfo[],
        online: ReadonlyMap<NodeId, Metadata>): NodeInfo[] {
        const domains = new Set(members.filter((m) => m.role === 'voter')
            .map((m) => online.get(m.id)?.failureDomain));
        const key = (m: NodeInfo): [number, bigint] => {
            const meta = online.get(m.id);
            return [domains.has(meta?.failureDomain) ? 1 : 0, meta?.weight ?? 0n];
        };
        return [...candidates].sort((a, b) => {
            const [da, wa] = key(a);
            const [db, wb] = key(b);
            if (da !== db) return da - db;
            return wa < wb ? -1 : wa > wb ? 1 : 0;
        });
    }

    private async adjust(): Promise<void> {
        const members = await this.admin.cluster({ signal: this.signal });
        const leaderId = this.node.id;
        if (members.length < 3) {
            for (const m of members) {
                if (m.role === 'voter' && m.id !== leaderId) await this.node.assign(m.id, 'spare');
            }
            return;
        }
        const online = await this.online(members);
        for (const [role, target] of [['voter', this.voters], ['standby', this.standbys]] as const) {
            const holders = members.filter((m) => m.role === role);
            let onlineHolders = holders.filter((m) => online.has(m.id)).length;
            // Standbys first when voters are short, then spares (go-dqlite's order).
            const below = this.order(members.filter((m) => online.has(m.id)
                && (role === 'voter' ? m.role !== 'voter' : m.role === 'spare')), members, online)
                .sort((a, b) => (a.role === 'standby' ? 0 : 1) - (b.role === 'standby' ? 0 : 1));
            for (const candidate of below) {
                if (onlineHolders >= target) break;
                await this.node.assign(candidate.id, role);
                this.logger.info({ id: String(candidate.id), role }, 'promoted');
                onlineHolders++;
            }
            // An offline holder is demoted only once enough online members hold the role.
            for (const offline of holders.filter((m) => !online.has(m.id) && m.id !== leaderId)) {
                if (onlineHolders < target) break;
                await this.node.assign(offline.id, 'spare');
                this.logger.info({ id: String(offline.id), role }, 'demoted an offline member');
            }
        }
    }

    /** Gives our role and leadership away, bounded in time. Never throws. */
    async handover(): Promise<void> {
        if (!this.lifecycle.isOpen) return;
        const deadline = AbortSignal.timeout(this.handoverTimeoutMs);
        const signal = AbortSignal.any([deadline, this.signal]);
        try {
            const members = await this.admin.cluster({ signal });
            const self = members.find((m) => m.id === this.node.id);
            if (self === undefined || self.role !== 'voter' || members.length === 1) return;
            const online = await this.online(members.filter((m) => m.id !== this.node.id));
            const replacement = members.find((m) => m.role === 'standby' && online.has(m.id))
                ?? members.find((m) => m.role === 'spare' && online.has(m.id));
            if (replacement !== undefined) await this.admin.assign(replacement.id, 'voter', { signal });
            if (this.node.status().role === 'leader') {
                // Only to a voter that answers and that this leader heard from: a dead one would
                // time out.
                const contacted = this.node.recentlyContacted();
                const target = members.find((m) => m.id !== this.node.id && m.role === 'voter'
                    && contacted.has(m.id) && online.has(m.id));
                if (target !== undefined) {
                    await this.node.transfer(target.id);
                    // Keep serving (our vote may be the one it needs) until the new leader is known.
                    while (!signal.aborted) {
                        const leader = this.node.status().leader;
                        if (leader !== 0n && leader !== this.node.id) break;
                        await delay(20, signal);
                    }
                }
            }
            if (replacement !== undefined) await this.admin.assign(this.node.id, 'spare', { signal });
            this.logger.info({ replacement: String(replacement?.id ?? 0n) }, 'handed over');
        } catch (error) {
            const code = error instanceof TqliteError ? error.code : undefined;
            this.logger.warn({ err: error, code }, 'handover incomplete');
        }
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.controller.abort(new AbortError('role manager closed'));
            await this.running;
            await this.admin.close();
        });
    }
}
