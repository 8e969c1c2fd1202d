// Shared simulator vocabulary: event kinds (mixed into the trace hash), client operations and
// the "sometimes" coverage counters.

export const EventKind = {
    tick: 1,
    deliver: 2,
    disk: 3,
    client: 4,
    clientTimeout: 5,
    nemesis: 6,
    restart: 7,
    snapshotStream: 8,
    heal: 9,
    check: 10,
    unreachable: 11,
    snapshotReport: 12,
    /** The log store's group-commit turn. */
    diskTurn: 13,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

export type OpStatus = 'pending' | 'ok' | 'fail' | 'unknown';

/** One client request, as recorded in the history. Times are simulated milliseconds. */
export interface ClientOp {
    readonly id: number;
    readonly client: number;
    readonly kind: 'write' | 'read';
    readonly key: number;
    readonly start: number;
    readonly healed: boolean;
    node: number;
    incarnation: number;
    status: OpStatus;
    end: number;
    /** Writes: where the proposal landed; the prefix hash at that index once acknowledged. */
    index: number;
    term: number;
    prefix: number;
    /** Reads: the highest index known committed anywhere when the read began. */
    requiredIndex: number;
    /** Reads: the index the core released the read at, the applied index it was served at, the value. */
    readIndex: number;
    servedAt: number;
    value: number;
}

/** "Sometimes" counters (TESTING.md §2.3): proof that a run reached the interesting states. */
export interface Counters {
    events: number;
    messagesSent: number;
    messagesDropped: number;
    duplicatesDelivered: number;
    elections: number;
    leaderChanges: number;
    splitVotes: number;
    followerTruncations: number;
    snapshotsTaken: number;
    snapshotInstalls: number;
    snapshotStreamsFailed: number;
    membershipChanges: number;
    membershipRefused: number;
    leaderRemoved: number;
    transfersOk: number;
    transfersFailed: number;
    crashes: number;
    crashesWithUnsyncedWrites: number;
    /** Nodes stopped by an injected I/O error (EIO on a sync, ENOSPC on a write). */
    storageFailures: number;
    partitions: number;
    partitionedLeaderStepDowns: number;
    leaderStepDowns: number;
    writesOk: number;
    writesFailed: number;
    readsOk: number;
    readsFailed: number;
    clientUnknown: number;
}

export function emptyCounters(): Counters {
    return {
        events: 0,
        messagesSent: 0,
        messagesDropped: 0,
        duplicatesDelivered: 0,
        elections: 0,
        leaderChanges: 0,
        splitVotes: 0,
        followerTruncations: 0,
        snapshotsTaken: 0,
        snapshotInstalls: 0,
        snapshotStreamsFailed: 0,
        membershipChanges: 0,
        membershipRefused: 0,
        leaderRemoved: 0,
        transfersOk: 0,
        transfersFailed: 0,
        crashes: 0,
        crashesWithUnsyncedWrites: 0,
        storageFailures: 0,
        partitions: 0,
        partitionedLeaderStepDowns: 0,
        leaderStepDowns: 0,
        writesOk: 0,
        writesFailed: 0,
        readsOk: 0,
        readsFailed: 0,
        clientUnknown: 0,
    };
}

/** The counters that the coverage report asks to see in a share of the seeds. */
export const SOMETIMES: readonly (keyof Counters)[] = [
    'leaderChanges',
    'splitVotes',
    'followerTruncations',
    'snapshotInstalls',
    'membershipChanges',
    'leaderRemoved',
    'transfersOk',
    'crashesWithUnsyncedWrites',
    'storageFailures',
    'partitionedLeaderStepDowns',
    'duplicatesDelivered',
    'clientUnknown',
];
