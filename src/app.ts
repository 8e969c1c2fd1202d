// go-dqlite `app` semantics on top of a Node (dqlite-notes.md §E, DESIGN.md §6): joining,
// role assignment and handover. This is what LXD, MicroCloud and MicroOVN rely on; the moment
// the third node joins (one voter becomes three) is where dqlite crashed in 2024, so every
// step here is bounded, cancellable, and owned by one RoleManager that close() stops.
//
// - Join: a node given join addresses asks the leader to ADD it as a spare until the leader
//   accepted it (or reports it is already a member); retries back off from 100 ms to
//   joinRetryMs (1 s, go-dqlite's fixed interval), jittered, so that joiners colliding on "a
//   membership change is already in progress" retry within one commit, not one second.
// - Assume (after joining, and at start): nothing while the cluster has < 3 members; a spare
//   promotes itself to voter while voters are short of the target, else to standby while
//   standbys are; if it became a voter while the cluster had exactly one voter it also
//   promotes one more member, so the third join turns 1 voter into 3.
// - Adjust (the leader, on every configuration change and every adjustIntervalMs): one change
//   at a time, decided by the pure decideAdjustment() on the members as they are now, applied,
//   and decided again until there is nothing to do (go-dqlite's maybeAdjustRoles loop). With
//   < 3 members only the leader votes; otherwise voters are spread over failure domains, then
//   promoted while short (online standbys first, then spares), demoted while in excess (never
//   the leader: concurrent Assumes can make four joiners all promote themselves), and offline
//   voters are demoted once enough online ones hold the role; then the same for standbys.
//   Candidates: a failure domain not yet represented first, then lower weight; the member to
//   demote is chosen by the same order reversed.
// - Handover (close): give our role to an online member below it (a voter's to a standby, else a
//   spare; a standby's to a spare), transfer leadership if we lead, then demote ourselves to
//   spare if someone took the role; bounded by handoverTimeoutMs.

import { systemClock } from './lib/clock.js';
import { AbortError, ConfigError, TqliteError } from './lib/errors.js';
import { Lifecycle } from './lib/lifecycle.js';
import { silentLogger, type Logger } from './lib/logger.js';
import { createAdminClient, type AdminClient, type NodeInfo } from './client/index.js';
import type { ClusterTls, Node } from './node/node.js';
import { chooseTransferTarget } from './node/transfer-target.js';
import type { NodeId, Role } from './raft/types.js';

export { chooseTransferTarget };

export interface RoleOptions {
    /** Voters wanted (odd, ≥ 1). Default 3. */
    readonly voters?: number;
    /** Standbys wanted. Default 3. */
    readonly standbys?: number;
    /** How often the leader re-balances roles. Default 30 s (go-dqlite's). */
    readonly adjustIntervalMs?: number;
    /**
     * Longest wait between attempts of the join request and of Assume. Default 1 s. The
     * first retries come sooner (from 1/10 of it, doubling, jittered): the usual failure is
     * another joiner's change in progress, which commits in milliseconds.
     */
    readonly joinRetryMs?: number;
    /** Bound of the whole handover at close. Default 10 s. */
    readonly handoverTimeoutMs?: number;
}

/**
 * Checks role options before anything is opened (ConfigError): the number of voters must be odd
 * (an even number tolerates no more failures than one fewer, and two halves can each miss a
 * majority), and every count or interval a whole number. go-dqlite's app is stricter (voters
 * ≥ 3, standbys odd too); tqlite also allows a single voter and any number of standbys.
 */
export function validateRoleOptions(options: RoleOptions = {}): void {
    const { voters, standbys } = options;
    if (voters !== undefined && !(Number.isSafeInteger(voters) && voters >= 1 && voters % 2 === 1)) {
        throw new ConfigError(`voters must be an odd whole number ≥ 1, not ${voters}`);
    }
    if (standbys !== undefined && !(Number.isSafeInteger(standbys) && standbys >= 0)) {
        throw new ConfigError(`standbys must be a whole number ≥ 0, not ${standbys}`);
    }
    for (const name of ['adjustIntervalMs', 'joinRetryMs', 'handoverTimeoutMs'] as const) {
        const value = options[name];
        if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
            throw new ConfigError(`${name} must be a positive whole number of milliseconds, not ${value}`);
        }
    }
}

const DESCRIBE_TIMEOUT_MS = 2_000;
const ASSUME_ATTEMPTS_MAX = 40;
const ADJUST_CHECK_MS = 1_000;
/**
 * An excess voter or standby is demoted only once the configuration has not changed for this
 * long: a handover briefly has one holder too many (the replacement is promoted before the
 * leaving node demotes itself), and the leader must not step into the middle of it.
 */
const EXCESS_GRACE_MS = 2_000;

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

/**
 * Waits between retries: from maxMs/10, doubling up to maxMs, each wait drawn from [d/2, d]
 * so that joiners started together do not collide again in lockstep.
 */
function retryDelays(maxMs: number): () => number {
    let ceiling = Math.max(1, maxMs / 10);
    return () => {
        const wait = ceiling / 2 + Math.random() * (ceiling / 2);
        ceiling = Math.min(ceiling * 2, maxMs);
        return wait;
    };
}

export interface Metadata {
    readonly failureDomain: bigint;
    readonly weight: bigint;
}

/** What the leader knows of a member when it adjusts roles. */
export interface MemberState {
    readonly id: NodeId;
    readonly role: Role;
    /** Metadata when the member answered DESCRIBE in time (go-dqlite's online check), else undefined. */
    readonly metadata: Metadata | undefined;
}

export interface RoleTargets {
    readonly voters: number;
    readonly standbys: number;
}

export interface RoleChange {
    readonly id: NodeId;
    readonly role: Role;
    readonly reason: 'small cluster' | 'spread domains' | 'short' | 'excess' | 'offline';
}

function describeChange(change: RoleChange): string {
    return `${String(change.id)} → ${change.role} (${change.reason})`;
}

/** The failure domains of these members (online ones only: an offline member's is unknown). */
function domainsOf(members: readonly MemberState[]): Set<bigint> {
    const domains = new Set<bigint>();
    for (const m of members) if (m.metadata !== undefined) domains.add(m.metadata.failureDomain);
    return domains;
}

/**
 * Best candidates first: a failure domain not in `covered` first, then lower weight; ties keep
 * the given (configuration) order, so older members, likelier to be caught up, come first.
 */
export function orderCandidates(candidates: readonly MemberState[], covered: ReadonlySet<bigint>): MemberState[] {
    const key = (m: MemberState): [number, bigint] => {
        const meta = m.metadata;
        return [meta === undefined || covered.has(meta.failureDomain) ? 1 : 0, meta?.weight ?? 0n];
    };
    return candidates.map((m, i) => ({ m, i })).sort((a, b) => {
        const [da, wa] = key(a.m);
        const [db, wb] = key(b.m);
        if (da !== db) return da - db;
        if (wa !== wb) return wa < wb ? -1 : 1;
        return a.i - b.i;
    }).map(({ m }) => m);
}

/**
 * Worst holders of a role first (the one to demote): a failure domain shared with more holders
 * first, then higher weight; ties: the newest member (last in the configuration) first.
 */
export function orderDemotions(holders: readonly MemberState[]): MemberState[] {
    const perDomain = new Map<bigint, number>();
    for (const m of holders) {
        if (m.metadata === undefined) continue;
        perDomain.set(m.metadata.failureDomain, (perDomain.get(m.metadata.failureDomain) ?? 0) + 1);
    }
    const crowd = (m: MemberState): number => perDomain.get(m.metadata?.failureDomain ?? -1n) ?? 0;
    return holders.map((m, i) => ({ m, i })).sort((a, b) => {
        if (crowd(a.m) !== crowd(b.m)) return crowd(b.m) - crowd(a.m);
        const wa = a.m.metadata?.weight ?? 0n;
        const wb = b.m.metadata?.weight ?? 0n;
        if (wa !== wb) return wa > wb ? -1 : 1;
        return b.i - a.i;
    }).map(({ m }) => m);
}

/**
 * Who takes a closing member's role at its handover (go-dqlite's RolesChanges.Handover): for a
 * voter, the best online standby, else the best online spare; for a standby, the best online
 * spare; none for a spare. "Best" is orderCandidates' order, with the failure domains of the
 * role's other online holders as the covered ones. `members` includes `self`.
 */
export function chooseReplacement(members: readonly MemberState[], self: NodeId): MemberState | undefined {
    const me = members.find((m) => m.id === self);
    if (me === undefined || me.role === 'spare') return undefined;
    const others = members.filter((m) => m.id !== self && m.metadata !== undefined);
    const covered = domainsOf(others.filter((m) => m.role === me.role));
    const best = (role: Role): MemberState | undefined => orderCandidates(others.filter((m) => m.role === role),
        covered)[0];
    return (me.role === 'voter' ? best('standby') : undefined) ?? best('spare');
}

/**
 * The leader's next role change, or undefined when the roles are as wanted (go-dqlite's
 * RolesChanges.Adjust, app/roles.go, with one difference: an excess voter becomes a standby
 * when standbys are short instead of a spare that the next step would promote). Pure: the
 * caller applies the change and calls again with the new roles, until undefined.
 */
export function decideAdjustment(members: readonly MemberState[], leaderId: NodeId,
    targets: RoleTargets): RoleChange | undefined {
    if (members.length <= 1) return undefined;
    if (members.length < 3) {
        // Below three members a second voter only makes the quorum harder to reach.
        const voter = members.find((m) => m.role === 'voter' && m.id !== leaderId);
        return voter === undefined ? undefined : { id: voter.id, role: 'spare', reason: 'small cluster' };
    }
    const list = (role: Role, online: boolean): MemberState[] =>
        members.filter((m) => m.role === role && (m.metadata !== undefined) === online);
    const onlineVoters = list('voter', true);
    const onlineStandbys = list('standby', true);
    const offlineVoters = list('voter', false);
    const offlineStandbys = list('standby', false);

    // Voters on every failure domain that has online members, when some domain holds two: a
    // voter from a domain without one joins (the excess rule then demotes one from a crowded
    // domain). Each round of the two adds a domain to the voters, so this ends.
    const voterDomains = domainsOf(onlineVoters);
    const allDomains = domainsOf(members);
    if (voterDomains.size < allDomains.size && voterDomains.size < onlineVoters.length) {
        const fresh = (m: MemberState): boolean =>
            m.metadata !== undefined && !voterDomains.has(m.metadata.failureDomain);
        const [best] = [...orderCandidates(list('standby', true).filter(fresh), voterDomains),
            ...orderCandidates(list('spare', true).filter(fresh), voterDomains)];
        if (best !== undefined) return { id: best.id, role: 'voter', reason: 'spread domains' };
    }

    if (onlineVoters.length < targets.voters) {
        // Standbys first (they are caught up), then spares. Nothing to promote: nothing else
        // either (demoting an offline voter now would shrink the voter set, not repair it).
        const [best] = [...orderCandidates(list('standby', true), voterDomains),
            ...orderCandidates(list('spare', true), voterDomains)];
        return best === undefined ? undefined : { id: best.id, role: 'voter', reason: 'short' };
    }
    if (onlineVoters.length > targets.voters) {
        const [worst] = orderDemotions(onlineVoters).filter((m) => m.id !== leaderId);
        if (worst !== undefined) {
            const role = onlineStandbys.length < targets.standbys ? 'standby' : 'spare';
            return { id: worst.id, role, reason: 'excess' };
        }
    }
    const [offlineVoter] = offlineVoters;
    if (offlineVoter !== undefined) return { id: offlineVoter.id, role: 'spare', reason: 'offline' };

    if (onlineStandbys.length < targets.standbys) {
        const [best] = orderCandidates(list('spare', true), domainsOf(onlineStandbys));
        if (best !== undefined) return { id: best.id, role: 'standby', reason: 'short' };
        return undefined;
    }
    if (onlineStandbys.length > targets.standbys) {
        const [worst] = orderDemotions(onlineStandbys).filter((m) => m.id !== leaderId);
        if (worst !== undefined) return { id: worst.id, role: 'spare', reason: 'excess' };
    }
    const [offlineStandby] = offlineStandbys;
    if (offlineStandby !== undefined) return { id: offlineStandby.id, role: 'spare', reason: 'offline' };
    return undefined;
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
        tls?: ClusterTls,
    ) {
        validateRoleOptions(options);
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
            tls,
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
        const assumeRetry = retryDelays(this.joinRetryMs);
        for (let attempt = 0; attempt < ASSUME_ATTEMPTS_MAX; attempt++) {
            if (await this.tryStep('assume', () => this.assume())) break;
            await delay(assumeRetry(), this.signal);
        }
        // The leader adjusts roles when the configuration changed (a join, a removal, a role
        // change) and every adjustIntervalMs; the check itself is cheap and runs every second.
        let adjustedAt = -Infinity;
        let adjustedFor: unknown;
        let seen: unknown;
        let changedAt = performance.now();
        for (;;) {
            await delay(ADJUST_CHECK_MS, this.signal);
            const status = this.node.status();
            const now = performance.now();
            if (status.configuration !== seen) {
                seen = status.configuration;
                changedAt = now;
            }
            if (status.role !== 'leader') continue;
            if (status.configuration === adjustedFor && now - adjustedAt < this.adjustIntervalMs) continue;
            // A pass that failed (a change of another member's in progress, a lost leadership)
            // or that held back an excess demotion is not remembered as done: the next check
            // runs it again.
            let done = false;
            const settled = now - changedAt >= EXCESS_GRACE_MS;
            if (await this.tryStep('adjust', async () => { done = await this.adjust(settled); }) && done) {
                adjustedFor = status.configuration;
                adjustedAt = now;
            }
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
        const retry = retryDelays(this.joinRetryMs);
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
            await delay(retry(), this.signal);
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
                const others = members.filter((m) => m.id !== this.node.id && m.role !== 'voter')
                    .map((m) => ({ id: m.id, role: m.role, metadata: online.get(m.id) }))
                    .filter((m) => m.metadata !== undefined);
                const voterDomains = domainsOf(members.filter((m) => m.role === 'voter')
                    .map((m) => ({ id: m.id, role: m.role, metadata: online.get(m.id) })));
                const [other] = orderCandidates(others, voterDomains);
                if (other !== undefined) {
                    await this.admin.assign(other.id, 'voter', { signal: this.signal, timeoutMs: 60_000 });
                    this.logger.info({ id: String(other.id) }, 'promoted a second voter');
                }
            }
        } else if (count('standby') < this.standbys) {
            await this.admin.assign(this.node.id, 'standby', { signal: this.signal, timeoutMs: 60_000 });
        }
    }

    /**
     * Applies decideAdjustment()'s changes one at a time until there is none left (true), or
     * until the next one is an excess demotion while the configuration is not yet settled
     * (false: later). Online-ness is probed once per pass (a member that did not answer stays
     * offline for the pass).
     */
    private async adjust(settled: boolean): Promise<boolean> {
        const probed = new Map<NodeId, Metadata | undefined>();
        // Bounded: each member changes role at most a few times in one pass.
        for (let changes = 0; ; changes++) {
            const members = await this.admin.cluster({ signal: this.signal });
            const unprobed = members.filter((m) => !probed.has(m.id));
            const online = await this.online(unprobed);
            for (const m of unprobed) probed.set(m.id, online.get(m.id));
            const states = members.map((m) => ({ id: m.id, role: m.role, metadata: probed.get(m.id) }));
            const change = decideAdjustment(states, this.node.id, { voters: this.voters, standbys: this.standbys });
            if (change === undefined) return true;
            // Our own changes in this pass reset no grace: only a configuration that was already
            // settled when the pass began may lose an excess holder in it.
            if (change.reason === 'excess' && !settled) return false;
            if (changes >= 3 * members.length) {
                this.logger.warn({ change: describeChange(change) }, 'role adjustment did not settle; later');
                return false;
            }
            await this.node.assign(change.id, change.role);
            const from = members.find((m) => m.id === change.id)?.role;
            this.logger.info({ id: String(change.id), from, to: change.role, reason: change.reason }, 'role adjusted');
        }
    }

    /** Gives our role and leadership away, bounded in time. Never throws. */
    async handover(): Promise<void> {
        if (!this.lifecycle.isOpen) return;
        // Not in its own configuration (a join that never went through): nothing to hand over,
        // and asking a cluster it may not reach would only wait for the deadline.
        if (!this.isMember()) return;
        const deadline = AbortSignal.timeout(this.handoverTimeoutMs);
        const signal = AbortSignal.any([deadline, this.signal]);
        try {
            const members = await this.admin.cluster({ signal });
            const self = members.find((m) => m.id === this.node.id);
            if (self === undefined || self.role === 'spare' || members.length === 1) return;
            const online = await this.online(members.filter((m) => m.id !== this.node.id));
            // Without a replacement we keep the role, as go-dqlite does: a voter demoted with
            // nobody promoted would shrink the quorum set, and the role is ours again when we
            // come back.
            const states = members.map((m) => ({ id: m.id, role: m.role, metadata: online.get(m.id) }));
            const replacement = chooseReplacement(states, this.node.id);
            if (replacement !== undefined) await this.assignUntilDone(replacement.id, self.role, signal);
            if (this.node.status().role === 'leader') {
                // Only to a voter that answers and that this leader heard from (a dead one would
                // time out), the most up-to-date.
                const target = chooseTransferTarget(members, this.node.id, online, this.node.recentlyContacted());
                if (target !== undefined) {
                    await this.node.transfer(target);
                    // Keep serving (our vote may be the one it needs) until the new leader is known.
                    while (!signal.aborted) {
                        const leader = this.node.status().leader;
                        if (leader !== 0n && leader !== this.node.id) break;
                        await delay(20, signal);
                    }
                }
            }
            if (replacement !== undefined) await this.assignUntilDone(this.node.id, 'spare', signal);
            this.logger.info({ replacement: String(replacement?.id ?? 0n) }, 'handed over');
        } catch (error) {
            const code = error instanceof TqliteError ? error.code : undefined;
            this.logger.warn({ err: error, code }, 'handover incomplete');
        }
    }

    /**
     * Assigns a role, retrying while another change is in progress (the leader's adjustment
     * or a joiner's Assume) until the member holds it or `signal` ends the handover.
     */
    private async assignUntilDone(id: NodeId, role: Role, signal: AbortSignal): Promise<void> {
        const retry = retryDelays(this.joinRetryMs);
        for (;;) {
            try {
                await this.admin.assign(id, role, { signal });
                return;
            } catch (error) {
                if (signal.aborted) throw error;
                const members = await this.admin.cluster({ signal }).catch(() => []);
                const member = members.find((m) => m.id === id);
                if (member?.role === role) return;
                if (members.length > 0 && member === undefined) throw error;
            }
            await delay(retry(), signal);
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
