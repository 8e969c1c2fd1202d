// Swarm options: every seed draws its own cluster shape, fault mix and rates (TESTING.md §2.2,
// §8(a)). A fault type is enabled per seed with some probability and then fires at a rate
// drawn for that seed, so rare combinations (slow disk + crashes, loss + duplication, tiny
// messages + snapshots, ...) all occur somewhere in a few hundred seeds.

import { SeededRandom } from '../../src/lib/random.js';

export interface NetworkOptions {
    delayMinMs: number;
    delayMeanMs: number;
    /** Probability that one message takes a "slow path" with 10x the mean delay (reordering). */
    slowProbability: number;
    lossProbability: number;
    duplicateProbability: number;
}

/** The network's mean delay after the heal (ms), the liveness phase. */
export const HEALED_NETWORK_MEAN_MS = 20;

export interface SimOptions {
    readonly seed: number;
    readonly clusterSize: number;
    readonly tickMs: number;
    /** Each node's tick period is tickMs · (1 + skew), skew drawn in [-clockSkew, clockSkew]. */
    readonly clockSkew: number;
    readonly electionTimeoutTicks: number;
    readonly heartbeatIntervalTicks: number;
    readonly preVote: boolean;
    readonly checkQuorum: boolean;
    readonly inflightMessagesMax: number;
    readonly messageBytesMax: number;
    readonly network: NetworkOptions;
    readonly diskLatencyMinMs: number;
    readonly diskLatencyMeanMs: number;
    /** Mean time between partition changes (0 = no partitions). */
    readonly partitionMeanIntervalMs: number;
    readonly partitionMeanDurationMs: number;
    readonly partitionAsymmetricProbability: number;
    /** Mean time between crashes (0 = no crashes). */
    readonly crashMeanIntervalMs: number;
    readonly crashMeanDownMs: number;
    /** Probability that a crash also makes some of the node's pending (not yet durable) writes stick. */
    readonly crashPartialWriteProbability: number;
    /** Size of the log store's segment files (small sizes exercise segment rollover). */
    readonly segmentBytes: number;
    /**
     * The nodes' SimFs offers O_DSYNC writes (writeDurable), so the log writes each batch with one
     * of them, as on RealFs; else write + fdatasync (as on SimFs before, BufferedFs, ...).
     */
    readonly durableWrites: boolean;
    /** Probability that an incarnation gets one injected I/O error (EIO on a sync, ENOSPC on a write). */
    readonly storageFaultProbability: number;
    readonly crashLeaderBias: number;
    /** Probability that a newly elected leader crashes soon after (the Figure 8 choreography). */
    readonly newLeaderCrashProbability: number;
    readonly newLeaderCrashDelayMeanMs: number;
    readonly membershipMeanIntervalMs: number;
    readonly transferMeanIntervalMs: number;
    /** Take a snapshot when this many entries were applied since the last one (0 = never). */
    readonly snapshotEveryEntries: number;
    readonly snapshotKeepTrailing: number;
    readonly clientCount: number;
    readonly clientThinkMeanMs: number;
    readonly clientReadProbability: number;
    readonly clientKeys: number;
    readonly clientTimeoutMs: number;
    /** Probability that a client aims at a node that claims to lead (else a random live node). */
    readonly clientLeaderAimProbability: number;
    /** Open loop: a client issues its next request after its think time even if one is pending. */
    readonly clientOpenLoop: boolean;
    readonly commandBytesMax: number;
    readonly chaosMs: number;
    /** After the heal: a single leader within this bound. */
    readonly leaderBoundMs: number;
    /** After the heal: every member converged within this bound. */
    readonly convergeBoundMs: number;
    /** Clients keep issuing requests for this long after the heal. */
    readonly healedClientMs: number;
    readonly nodesMax: number;
    /** The leader-churn profile is on (see swarmOptions). */
    readonly churn: boolean;
}

function pickWeighted<T>(random: SeededRandom, items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let x = random.float() * total;
    for (const [item, w] of items) {
        x -= w;
        if (x < 0) return item;
    }
    return (items[items.length - 1] as readonly [T, number])[0];
}

/** Draws the options of one seed from the seed's `options` stream. */
export function swarmOptions(seed: number): SimOptions {
    const random = new SeededRandom(seed).fork('options');
    const on = (p: number): boolean => random.chance(p);
    const clusterSize = pickWeighted(random, [[1, 1], [3, 4], [5, 3], [7, 1.5]]);
    const tickMs = 100;
    const electionTimeoutTicks = random.pick([5, 8, 10, 10, 15]);
    const slowNetwork = on(0.15);
    const network: NetworkOptions = {
        delayMinMs: random.pick([0.1, 1, 5]),
        delayMeanMs: slowNetwork ? random.pick([50, 150]) : random.pick([1, 5, 20]),
        slowProbability: on(0.3) ? random.pick([0.01, 0.05]) : 0,
        lossProbability: on(0.5) ? random.pick([0.01, 0.05, 0.2]) : 0,
        duplicateProbability: on(0.4) ? random.pick([0.01, 0.05, 0.2]) : 0,
    };
    const slowDisk = on(0.25);
    const segmentBytes = random.pick([4096, 16384, 65536]);
    const storageFaultProbability = on(0.2) ? random.pick([0.05, 0.2]) : 0;
    const drawn: Omit<SimOptions, 'leaderBoundMs'> = {
        seed,
        clusterSize,
        tickMs,
        clockSkew: on(0.5) ? random.pick([0.02, 0.1]) : 0,
        electionTimeoutTicks,
        heartbeatIntervalTicks: on(0.2) ? 2 : 1,
        preVote: on(0.8),
        checkQuorum: on(0.8),
        inflightMessagesMax: random.pick([1, 4, 64]),
        messageBytesMax: random.pick([64, 512, 1 << 20]),
        network,
        diskLatencyMinMs: random.pick([0.05, 0.5, 2]),
        diskLatencyMeanMs: slowDisk ? random.pick([30, 100, 300]) : random.pick([0.5, 3, 10]),
        partitionMeanIntervalMs: clusterSize > 1 && on(0.6) ? random.pick([1000, 3000, 8000]) : 0,
        partitionMeanDurationMs: random.pick([500, 2000, 5000]),
        partitionAsymmetricProbability: on(0.5) ? 0.5 : 0,
        crashMeanIntervalMs: on(0.6) ? random.pick([1000, 4000, 10000]) : 0,
        crashMeanDownMs: random.pick([200, 1000, 4000]),
        crashPartialWriteProbability: on(0.5) ? 0.5 : 0,
        segmentBytes,
        // From a stream of its own, so that every draw of the `options` stream stays put.
        durableWrites: new SeededRandom(seed).fork('durableWrites').chance(0.5),
        storageFaultProbability,
        crashLeaderBias: random.pick([0, 0.3, 0.7]),
        newLeaderCrashProbability: 0,
        newLeaderCrashDelayMeanMs: 0,
        membershipMeanIntervalMs: on(0.45) ? random.pick([1500, 5000]) : 0,
        transferMeanIntervalMs: clusterSize > 1 && on(0.35) ? random.pick([1500, 5000]) : 0,
        snapshotEveryEntries: on(0.6) ? random.pick([4, 16, 64]) : 0,
        snapshotKeepTrailing: random.pick([0, 0, 2, 16]),
        clientCount: random.pick([1, 2, 4, 6]),
        clientThinkMeanMs: random.pick([20, 100, 400]),
        clientReadProbability: random.pick([0.2, 0.5, 0.8]),
        clientKeys: random.pick([1, 3, 8]),
        clientTimeoutMs: random.pick([500, 2000, 6000]),
        clientLeaderAimProbability: random.pick([0.7, 0.95]),
        clientOpenLoop: false,
        commandBytesMax: random.pick([12, 40, 200]),
        chaosMs: random.pick([10_000, 20_000, 30_000]),
        convergeBoundMs: 20 * 2 * electionTimeoutTicks * tickMs,
        healedClientMs: 2000,
        nodesMax: 9,
        churn: false,
    };
    // An election round costs a (randomized) election timeout plus a vote persisted on each side:
    // Raft elects only when that "broadcast time" is well below the election timeout. Slow disks
    // (exp(300 ms) syncs against a 0.5–1 s timeout) break that requirement, and elections then
    // take many rounds (seed 663104049: a leader 12.6 s after the heal), so the bound is ten
    // rounds including the disk, not ten timeouts alone. A pure function of the draws above.
    const base: SimOptions = {
        ...drawn,
        leaderBoundMs: 10 * (2 * electionTimeoutTicks * tickMs
            + 2 * (drawn.diskLatencyMinMs + drawn.diskLatencyMeanMs) + 2 * HEALED_NETWORK_MEAN_MS),
    };
    // Leader churn (drawn last so the draws above stay put): leaders crash right after
    // replicating to a few followers, one entry per message, writes keep coming. This is the
    // shape of the Figure 8 schedule (§5.4.2) and of most lost-commit bugs.
    if (clusterSize === 1 || !on(0.35)) return base;
    return {
        ...base,
        crashMeanIntervalMs: random.pick([300, 600, 1000]),
        crashMeanDownMs: random.pick([100, 300, 800]),
        crashLeaderBias: 0.9,
        crashPartialWriteProbability: 0.5,
        newLeaderCrashProbability: random.pick([0, 0.3, 0.6]),
        newLeaderCrashDelayMeanMs: random.pick([10, 50, 200]),
        messageBytesMax: 1,
        inflightMessagesMax: random.pick([1, 2]),
        clientCount: 4,
        clientThinkMeanMs: 20,
        clientReadProbability: 0.3,
        clientOpenLoop: on(0.5),
        partitionMeanIntervalMs: on(0.5) ? random.pick([500, 1500]) : base.partitionMeanIntervalMs,
        membershipMeanIntervalMs: on(0.5) ? base.membershipMeanIntervalMs : 0,
        churn: true,
    };
}

export function describeOptions(o: SimOptions): string {
    const n = o.network;
    const parts = [
        `size=${o.clusterSize}`,
        `election=${o.electionTimeoutTicks}t hb=${o.heartbeatIntervalTicks}t skew=${o.clockSkew}`,
        `preVote=${o.preVote} checkQuorum=${o.checkQuorum} inflight=${o.inflightMessagesMax}` +
            ` msgBytes=${o.messageBytesMax}`,
        `net=${n.delayMinMs}+exp(${n.delayMeanMs})ms slow=${n.slowProbability} loss=${n.lossProbability}` +
            ` dup=${n.duplicateProbability}`,
        `disk=${o.diskLatencyMinMs}+exp(${o.diskLatencyMeanMs})ms segment=${o.segmentBytes}` +
            ` storageFaults=${o.storageFaultProbability} durableWrites=${o.durableWrites}`,
        `partitions=${o.partitionMeanIntervalMs}/${o.partitionMeanDurationMs}ms` +
            ` asym=${o.partitionAsymmetricProbability}`,
        `crashes=${o.crashMeanIntervalMs}/${o.crashMeanDownMs}ms partialWrites=${o.crashPartialWriteProbability}` +
            ` leaderBias=${o.crashLeaderBias}` +
            ` newLeader=${o.newLeaderCrashProbability}/${o.newLeaderCrashDelayMeanMs}ms`,
        `membership=${o.membershipMeanIntervalMs}ms transfers=${o.transferMeanIntervalMs}ms`,
        `snapshots=${o.snapshotEveryEntries}/keep${o.snapshotKeepTrailing}`,
        `clients=${o.clientCount} think=${o.clientThinkMeanMs}ms reads=${o.clientReadProbability}` +
            ` keys=${o.clientKeys}` +
            ` timeout=${o.clientTimeoutMs}ms aim=${o.clientLeaderAimProbability} openLoop=${o.clientOpenLoop}`,
        `chaos=${o.chaosMs}ms churn=${o.churn}`,
    ];
    return parts.join('\n  ');
}
