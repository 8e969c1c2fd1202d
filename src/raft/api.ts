// The public surface of the raft core (implemented by RaftCore in core.ts). Everything here is
// synchronous and pure: time arrives only as tick(), randomness only through config.random.
// Errors for requests that are refused at once are thrown as the typed errors of
// src/lib/errors.ts (NotLeaderError, BusyError, MembershipError, ConfigError); anything that
// completes later is reported in Ready.outcomes / readStates / committedEntries.

import type { Random } from '../lib/random.js';
import type { Logger } from '../lib/logger.js';
import type { Message } from './messages.js';
import type { Ready, SoftState } from './ready.js';
import type { Configuration, Entry, HardState, LogIndex, NodeId, Role, SnapshotMeta, Term } from './types.js';

export interface RaftConfig {
    readonly id: NodeId;
    /** Election timeout base; each election timeout is drawn in [base, 2·base). Default 10. */
    readonly electionTimeoutTicks?: number;
    /** Default 1. Must be < electionTimeoutTicks. */
    readonly heartbeatIntervalTicks?: number;
    /** Default true. */
    readonly preVote?: boolean;
    /** Default true: a leader that has not heard from a quorum in an election timeout steps down. */
    readonly checkQuorum?: boolean;
    /** Bound on AppendEntries messages in flight per follower in the pipeline. Default 64. */
    readonly inflightMessagesMax?: number;
    /** Bound on the payload bytes of one AppendEntries. Default 1 MiB (at least one entry). */
    readonly messageBytesMax?: number;
    /** Catch-up rounds before a promotion to voter is given up. Default 10. */
    readonly catchUpRoundsMax?: number;
    /** Maximum ticks of one catch-up round; a round that fits is "caught up". Default = election timeout. */
    readonly catchUpRoundTicksMax?: number;
    readonly random: Random;
    readonly logger?: Logger;
}

/** What the node loaded from disk (everything here is durable). */
export interface InitialState {
    readonly hardState: HardState;
    readonly snapshot: SnapshotMeta | undefined;
    /** Contiguous entries following the snapshot (or starting at index 1). */
    readonly entries: readonly Entry[];
    /**
     * An index known committed (e.g. the state machine's durable index); entries up to it are
     * not handed out again as committedEntries. 0 if unknown.
     */
    readonly appliedIndex: LogIndex;
}

export type MembershipChange =
    | { readonly kind: 'add'; readonly id: NodeId; readonly address: string }
    | { readonly kind: 'assign'; readonly id: NodeId; readonly role: Role }
    | { readonly kind: 'remove'; readonly id: NodeId };

export interface ProgressInfo {
    readonly id: NodeId;
    readonly match: LogIndex;
    readonly next: LogIndex;
    readonly state: 'probe' | 'replicate' | 'snapshot';
    /** Ticks since the leader last heard from this peer. */
    readonly lastContactTicks: number;
}

export interface Status {
    readonly id: NodeId;
    readonly soft: SoftState;
    readonly hardState: HardState;
    readonly commitIndex: LogIndex;
    readonly lastIndex: LogIndex;
    readonly lastTerm: Term;
    readonly persistedIndex: LogIndex;
    readonly firstIndex: LogIndex;
    readonly snapshotIndex: LogIndex;
    /** Leader only. */
    readonly progress: readonly ProgressInfo[];
}

export interface RaftCoreApi {
    /** Advances logical time by one tick (heartbeats, election timeouts, check-quorum, catch-up). */
    tick(): void;
    /**
     * What the driver calls when it starts: the only voter of its configuration, at rest,
     * campaigns now instead of at its first tick (see RaftCore.campaignIfSoleVoter).
     */
    campaignIfSoleVoter(): void;
    /** Feeds one message from a peer (or an InstallSnapshot whose data was received). */
    step(message: Message): void;
    /** Leader only: appends a command entry. Throws NotLeaderError (or BusyError during a transfer). */
    propose(data: Uint8Array): { index: LogIndex; term: Term };
    /** Leader only: appends a barrier entry; it is committed and applied like a command. */
    barrier(): { index: LogIndex; term: Term };
    /**
     * Leader only: a linearizable read (§6.4). Batched: a confirmation round starts at once
     * when none is in flight (and the leader's no-op is committed); reads requested while one
     * is in flight share the next round. Released in Ready.readStates, or failed in
     * Ready.outcomes.
     */
    readIndex(requestId: number): void;
    /**
     * Leader only; one change at a time (MembershipError when one is pending or the current term
     * has no committed entry yet). `add` adds a spare; `assign` to voter runs catch-up rounds
     * first. The outcome arrives in Ready.outcomes once the change entry commits or fails.
     */
    changeMembership(requestId: number, change: MembershipChange): void;
    /** Leader only: transfer to `target` (0n = the most up-to-date voter). Outcome in Ready.outcomes. */
    transferLeadership(requestId: number, target: NodeId): void;
    /** The driver made the log durable up to this entry (see the contract in ready.ts). */
    persisted(last: { index: LogIndex; term: Term }): void;
    /**
     * Added: the driver made this Ready.hardState durable (see the contract in ready.ts). A
     * candidate that is the only voter counts its own vote only after this call, so it never
     * leads a term it could forget in a crash (every other election needs a vote that can
     * only come back after the candidate's term is durable).
     */
    hardStatePersisted(state: HardState): void;
    /** The driver installed the snapshot handed out in a Ready. */
    snapshotInstalled(index: LogIndex): void;
    /** Streaming a snapshot to `to` failed or succeeded (the leader then resumes probing). */
    reportSnapshot(to: NodeId, ok: boolean): void;
    /** The peer could not be reached (the leader falls back to probing it). */
    reportUnreachable(to: NodeId): void;
    /**
     * The state machine took a snapshot at `meta.index` (≤ applied): drop entries up to
     * `meta.index - keepTrailing` (the trailing ones serve slightly lagging followers without a
     * snapshot); `meta` becomes the snapshot sent to followers that need compacted entries.
     */
    compact(meta: SnapshotMeta, keepTrailing: number): void;
    /** Entries for catch-up reads by the driver (e.g. for the peer transport). */
    entries(lo: LogIndex, hi: LogIndex): readonly Entry[];
    ready(): Ready;
    hasReady(): boolean;
    status(): Status;
}

/** The entries and hard state that make a new one-voter cluster (written before the first start). */
export interface Bootstrap {
    readonly hardState: HardState;
    readonly entries: readonly Entry[];
    readonly configuration: Configuration;
}
