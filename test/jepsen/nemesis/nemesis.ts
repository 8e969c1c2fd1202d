// The nemesis: faults combined at random from a seed (TESTING.md §8(b)), Jepsen-style. The run is
// a sequence of steps; each step waits a quiet gap, picks one fault kind by the profile's weights
// and, with some probability, a second one of the other family (a process fault together with a
// network fault), applies them, holds them for a while and undoes them (restart, SIGCONT, heal).
//
//   process faults: kill (SIGKILL one node, the leader half of the time, restart later),
//                   kill-majority (SIGKILL a majority at once: with --unsafe-power-cut-mode
//                   their unsynced log writes are lost together), pause (SIGSTOP / SIGCONT),
//                   stop (SIGTERM graceful handover and exit, restart later), member (remove a
//                   follower from the configuration, SIGKILL it, wipe its data directory and
//                   start it again: it rejoins as a new node and the role manager promotes it),
//                   disk-full (disk mode only: fill one node's tmpfs, the leader half of the
//                   time, with a balloon; free it later and restart the node if it stopped);
//   network faults: partition-leader (isolate the leader from the other nodes, sometimes from
//                   clients too), partition (random majority / minority), bridge (two halves
//                   joined by one node), one-way (one directed link black-holed), delay (every
//                   peer link delayed 20-100 ms with 0-50 ms jitter).
//
// Replay: every random draw comes from one SeededRandom in a fixed order per step, so the same
// seed gives the same sequence of fault kinds, targets (as "the leader" or a node index) and
// durations. What "the leader" is, and exactly when each fault lands relative to client ops,
// depends on the real run, so a replay repeats the schedule, not the interleaving.

import { SeededRandom } from '../../../src/lib/random.js';
import type { NemesisCluster } from './cluster.js';

export type FaultKind =
    | 'kill' | 'kill-majority' | 'pause' | 'stop' | 'member' | 'disk-full'
    | 'partition-leader' | 'partition' | 'bridge' | 'one-way' | 'delay';

const PROCESS_FAULTS: readonly FaultKind[] = ['kill', 'kill-majority', 'pause', 'stop', 'member', 'disk-full'];

export type Profile = 'kill' | 'pause' | 'partition' | 'mixed' | 'disk';

export const PROFILES: Record<Profile, Partial<Record<FaultKind, number>>> = {
    kill: { 'kill': 6, 'kill-majority': 1, 'stop': 2, 'pause': 1, 'partition': 1 },
    pause: { 'pause': 6, 'stop': 2, 'kill': 1, 'partition-leader': 1 },
    // Combined steps add a process fault 30 % of the time: here a kill or a pause.
    partition: { 'partition-leader': 3, 'partition': 3, 'bridge': 2, 'one-way': 2, 'delay': 1, 'kill': 1, 'pause': 1 },
    mixed: {
        'kill': 2, 'kill-majority': 1, 'pause': 2, 'stop': 1, 'member': 1,
        'partition-leader': 2, 'partition': 2, 'bridge': 1, 'one-way': 1, 'delay': 1,
    },
    // Needs disk mode (a tmpfs per node: root). Full disks, alone or with a kill or a partition.
    disk: { 'disk-full': 4, 'kill': 1, 'pause': 1, 'partition-leader': 1, 'partition': 1 },
};

/** Profiles whose faults need the cluster's disk mode. */
export function needsDiskMode(profile: Profile): boolean {
    return (PROFILES[profile]['disk-full'] ?? 0) > 0;
}

export interface NemesisEvent {
    /** Milliseconds since the nemesis started. */
    readonly atMs: number;
    readonly kind: FaultKind | 'heal';
    readonly detail: string;
}

export interface NemesisOptions {
    readonly seed: number;
    readonly profile: Profile;
    readonly durationMs: number;
    /** Disable faults the target cannot do (dqlite-demo: no status, no member). */
    readonly disabled?: readonly FaultKind[];
    readonly log: (line: string) => void;
}

export interface Plan {
    readonly kind: FaultKind;
    readonly holdMs: number;
    /** Draws made up front so the schedule does not depend on runtime state. */
    readonly useLeader: boolean;
    readonly pick: number;
    readonly shuffle: number[];
    readonly flag: boolean;
    readonly delayMs: number;
    readonly jitterMs: number;
}

/** One step of the schedule: a quiet gap, then one or two faults at once. */
export interface Step {
    readonly gapMs: number;
    readonly plans: readonly Plan[];
}

function pickKind(random: SeededRandom, weights: readonly [FaultKind, number][]): FaultKind {
    const total = weights.reduce((s, [, w]) => s + w, 0);
    let roll = random.float() * total;
    for (const [k, w] of weights) {
        roll -= w;
        if (roll < 0) return k;
    }
    return (weights[weights.length - 1] as [FaultKind, number])[0];
}

function plan(random: SeededRandom, kind: FaultKind, n: number): Plan {
    return {
        kind,
        holdMs: kind === 'pause' ? random.range(1_000, 10_000) : random.range(1_500, 7_000),
        useLeader: random.chance(0.5),
        pick: random.int(n),
        shuffle: random.shuffle([...Array(n).keys()]),
        flag: random.chance(0.3),
        delayMs: random.range(20, 100),
        jitterMs: random.range(0, 50),
    };
}

/**
 * The fault schedule: an endless sequence of steps drawn from `random` only (pure: the same
 * seed gives the same steps, whatever happens in the cluster). A step picks a fault by the
 * profile's weights and, 30 % of the time, a second one of the other family.
 */
export function* schedule(
    random: SeededRandom, profile: Profile, n: number, disabled: readonly FaultKind[] = [],
): Generator<Step, never> {
    const weights = Object.entries(PROFILES[profile])
        .filter(([k]) => !disabled.includes(k as FaultKind)) as [FaultKind, number][];
    for (;;) {
        const gapMs = random.range(500, 2_500);
        const first = plan(random, pickKind(random, weights), n);
        const combine = random.chance(0.3);
        const isProcess = PROCESS_FAULTS.includes(first.kind);
        const otherFamily = weights.filter(([k]) => PROCESS_FAULTS.includes(k) !== isProcess);
        const secondKind = otherFamily.length > 0 ? pickKind(random, otherFamily) : undefined;
        const second = combine && secondKind !== undefined ? plan(random, secondKind, n) : undefined;
        yield { gapMs, plans: second === undefined ? [first] : [first, second] };
    }
}

export class Nemesis {
    readonly events: NemesisEvent[] = [];
    readonly counts = new Map<FaultKind, number>();
    /** Problems the nemesis itself saw (a node that did not stop on SIGTERM, a failed restart). */
    readonly problems: string[] = [];
    private readonly random: SeededRandom;
    private started = Date.now();
    private stopping = false;

    constructor(private readonly cluster: NemesisCluster, private readonly options: NemesisOptions) {
        this.random = new SeededRandom(options.seed).fork('nemesis');
    }

    private note(kind: FaultKind | 'heal', detail: string): void {
        const atMs = Date.now() - this.started;
        this.events.push({ atMs, kind, detail });
        this.options.log(`[nemesis +${(atMs / 1000).toFixed(1)}s] ${kind} ${detail}`);
    }

    stop(): void {
        this.stopping = true;
    }

    /** Runs steps until the duration is over (or stop()). */
    async run(): Promise<void> {
        this.started = Date.now();
        const end = this.started + this.options.durationMs;
        const steps = schedule(this.random, this.options.profile, this.cluster.size, this.options.disabled ?? []);
        while (!this.stopping && Date.now() < end) {
            const step = steps.next().value as Step;
            await sleepUntil(Math.min(end, Date.now() + step.gapMs), () => this.stopping);
            if (this.stopping || Date.now() >= end) break;
            await Promise.all(step.plans.map((p) => this.apply(p, end)));
        }
    }

    /** The leader (when the plan says so and one is known), else the planned node. */
    private async target(plan: Plan, candidates: readonly number[]): Promise<number | undefined> {
        if (candidates.length === 0) return undefined;
        if (plan.useLeader) {
            const leader = await this.cluster.leader();
            if (leader !== undefined && candidates.includes(leader)) return leader;
        }
        return candidates.includes(plan.pick) ? plan.pick : candidates[plan.pick % candidates.length];
    }

    private upNodes(): number[] {
        return this.cluster.states.flatMap((s, i) => (s === 'up' ? [i] : []));
    }

    private count(kind: FaultKind): void {
        this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    }

    private async hold(plan: Plan, end: number): Promise<void> {
        await sleepUntil(Math.min(Date.now() + plan.holdMs, end + 1_000), () => this.stopping);
    }

    private async restart(i: number): Promise<void> {
        try {
            this.cluster.start(i);
        } catch (error) {
            this.problems.push(`restart of n${i + 1} failed: ${(error as Error).message}`);
        }
    }

    private async apply(plan: Plan, end: number): Promise<void> {
        const c = this.cluster;
        const n = c.size;
        const name = (i: number): string => c.nodeId(i);
        switch (plan.kind) {
            case 'kill': {
                const i = await this.target(plan, this.upNodes());
                if (i === undefined) return;
                this.count('kill');
                this.note('kill', `SIGKILL ${name(i)}`);
                await c.kill9(i);
                await this.hold(plan, end);
                this.note('heal', `restart ${name(i)}`);
                await this.restart(i);
                return;
            }
            case 'kill-majority': {
                const victims = plan.shuffle.slice(0, Math.floor(n / 2) + 1).filter((i) => c.states[i] === 'up');
                if (victims.length === 0) return;
                this.count('kill-majority');
                this.note('kill-majority', `SIGKILL ${victims.map(name).join(',')}`);
                await Promise.all(victims.map((i) => c.kill9(i)));
                await this.hold(plan, end);
                this.note('heal', `restart ${victims.map(name).join(',')}`);
                for (const i of victims) await this.restart(i);
                return;
            }
            case 'pause': {
                const i = await this.target(plan, this.upNodes());
                if (i === undefined) return;
                this.count('pause');
                this.note('pause', `SIGSTOP ${name(i)} for ${plan.holdMs} ms`);
                c.pause(i);
                await this.hold(plan, end);
                this.note('heal', `SIGCONT ${name(i)}`);
                c.resume(i);
                return;
            }
            case 'stop': {
                const i = await this.target(plan, this.upNodes());
                if (i === undefined) return;
                this.count('stop');
                this.note('stop', `SIGTERM ${name(i)}`);
                const t0 = Date.now();
                const clean = await c.stop(i, 20_000);
                if (!clean) this.problems.push(`${name(i)} did not exit within 20 s of SIGTERM`);
                else this.note('stop', `${name(i)} exited after ${Date.now() - t0} ms`);
                await this.hold(plan, end);
                this.note('heal', `restart ${name(i)}`);
                await this.restart(i);
                return;
            }
            case 'member': {
                const leader = await c.leader();
                const candidates = this.upNodes().filter((i) => i !== leader);
                const i = candidates.includes(plan.pick)
                    ? plan.pick : candidates[plan.pick % Math.max(1, candidates.length)];
                if (i === undefined) return;
                let removed = false;
                try {
                    removed = await c.removeMember(i);
                } catch (error) {
                    // An indeterminate answer (leadership lost, timeout): the change may still
                    // commit. Watch the configuration for a while; go on only once it is gone.
                    removed = await this.removedWithin(i, 15_000);
                    this.note('member', `remove ${name(i)} answered "${(error as Error).message}"; `
                        + (removed ? 'it is out of the configuration: go on' : 'still a member: skipped'));
                    if (!removed) return;
                }
                if (!removed) {
                    this.note('member', `remove ${name(i)}: no leader or not a member: skipped`);
                    return;
                }
                this.count('member');
                this.note('member', `removed ${name(i)}; SIGKILL and wipe it`);
                await c.kill9(i);
                c.wipe(i);
                await this.hold(plan, end);
                this.note('heal', `${name(i)} starts empty and rejoins`);
                await this.restart(i);
                return;
            }
            case 'disk-full': {
                const i = await this.target(plan, this.upNodes());
                if (i === undefined) return;
                this.count('disk-full');
                const bytes = await c.fillDisk(i);
                this.note('disk-full', `${name(i)}'s disk filled (a ${(bytes / 2 ** 20).toFixed(0)} MiB balloon)`);
                await this.hold(plan, end);
                // Stopped already: restarted here; stopping later: the cluster restarts it.
                const stopped = !c.isRunning(i);
                c.freeDisk(i);
                this.note('heal', `${name(i)}'s disk freed${stopped ? '; it had stopped: restart it' : ''}`);
                if (stopped) await this.restart(i);
                return;
            }
            case 'partition-leader': {
                const leader = await c.leader();
                const i = leader ?? plan.pick;
                this.count('partition-leader');
                this.note('partition-leader', `isolate ${name(i)}${leader === undefined ? ' (no leader known)' : ''}`
                    + `${plan.flag ? ' from clients too' : ''}`);
                c.net.isolate(name(i), { clients: plan.flag });
                await this.hold(plan, end);
                this.note('heal', 'heal the network');
                c.heal();
                return;
            }
            case 'partition': {
                const shuffled = plan.shuffle.map(name);
                const majority = shuffled.slice(0, Math.floor(n / 2) + 1);
                const minority = shuffled.slice(majority.length);
                this.count('partition');
                this.note('partition', `[${majority.join(',')}] | [${minority.join(',')}]`);
                c.net.partition([majority, minority]);
                await this.hold(plan, end);
                this.note('heal', 'heal the network');
                c.heal();
                return;
            }
            case 'bridge': {
                const [bridge, ...rest] = plan.shuffle.map(name);
                const left = rest.slice(0, Math.ceil(rest.length / 2));
                const right = rest.slice(left.length);
                this.count('bridge');
                this.note('bridge', `[${left.join(',')}] <-${bridge}-> [${right.join(',')}]`);
                c.net.bridge(bridge as string, left, right);
                await this.hold(plan, end);
                this.note('heal', 'heal the network');
                c.heal();
                return;
            }
            case 'one-way': {
                const leader = plan.useLeader ? await c.leader() : undefined;
                const from = leader ?? (plan.shuffle[0] as number);
                const to = plan.shuffle.find((i) => i !== from) as number;
                const [a, b] = plan.flag ? [to, from] : [from, to];
                this.count('one-way');
                this.note('one-way', `${name(a)} -/-> ${name(b)}`);
                c.net.oneWay(name(a), name(b));
                await this.hold(plan, end);
                this.note('heal', 'heal the network');
                c.heal();
                return;
            }
            case 'delay': {
                this.count('delay');
                this.note('delay', `every peer link ${plan.delayMs} ms + jitter ${plan.jitterMs} ms`);
                for (let a = 0; a < n; a++) {
                    for (let b = 0; b < n; b++) {
                        const mode = { kind: 'delay', ms: plan.delayMs, jitterMs: plan.jitterMs } as const;
                        if (a !== b) c.net.link(name(a), name(b)).setMode(mode);
                    }
                }
                await this.hold(plan, end);
                this.note('heal', 'heal the network');
                c.heal();
                return;
            }
        }
    }

    /** Whether node i's address leaves the configuration within `timeoutMs`. */
    private async removedWithin(i: number, timeoutMs: number): Promise<boolean> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            try {
                const members = await this.cluster.members();
                if (!members.some((m) => m.address === this.cluster.advertised[i])) return true;
            } catch {
                // no node answered: try again
            }
            await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return false;
    }

    /** Undoes every fault still in place: heal the network, SIGCONT, restart the stopped nodes. */
    async healAll(): Promise<void> {
        const c = this.cluster;
        c.heal();
        for (let i = 0; i < c.size; i++) c.resume(i);
        for (let i = 0; i < c.size; i++) if (!c.isRunning(i)) await this.restart(i);
        this.note('heal', 'final heal: network healed, every node running');
    }
}

async function sleepUntil(deadline: number, stop: () => boolean): Promise<void> {
    while (!stop() && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(1, deadline - Date.now()))));
    }
}
