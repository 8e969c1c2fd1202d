// RaftCore: the pure, synchronous raft state machine (DESIGN.md §4), in the shape of etcd's
// RawNode with C-Raft's membership model (voter / standby / spare, configuration in effect
// once appended, catch-up rounds before promotion).
//
// Construction: `new RaftCore(config, initialState)`. Inputs are the RaftCoreApi methods;
// output is ready() (contract in ready.ts). Nothing here reads a clock, draws its own random numbers,
// touches I/O or awaits: time is tick(), randomness is config.random.
//
// Section references are to the Raft paper (§5.x) and Ongaro's dissertation (§3.x–§10.x).
//
// Decisions a driver or a reader should know about:
//  - Every response and every real RequestVote goes out in Ready.messagesAfterPersist, so a
//    vote or an acknowledgement never leaves before what it promises is durable. A candidate
//    may therefore count its own vote at once when another voter exists; a lone voter waits
//    for hardStatePersisted() so it never leads a term a crash could make it forget.
//  - Committed entries are handed out only up to min(commit, persisted): what the driver
//    applies is durable locally. The leader counts itself for commit only up to persisted.
//  - Configurations take effect when appended (§4.1) and roll back when truncated. A server
//    may campaign when it is a voter of the latest configuration or of any configuration
//    since the last committed one (a leader removing itself must be able to finish).
//  - ReadIndex: a confirmation round starts as soon as a read arrives, even while earlier
//    rounds are in flight (pipelined); the reads of one Ready share one heartbeat per follower.
//    Rounds ride on AppendEntries (readRound) and need the leader's no-op to be committed first.
//  - Outcomes: a change whose entry was appended fails with IndeterminateError when
//    leadership is lost before it commits (it may still commit), with NotLeaderError when
//    lost during catch-up, with MembershipError when catch-up fails; a transfer succeeds when
//    a newer term deposes the leader, fails with TimeoutError after an election timeout; a
//    pending read fails with NotLeaderError when leadership ends.
//  - A snapshot restored from a leader becomes the one this node sends to others only once
//    snapshotInstalled() reports it durable.

import { assert } from '../lib/assert.js';
import {
    BusyError, ConfigError, IndeterminateError, MembershipError, NotLeaderError, TimeoutError,
} from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Random } from '../lib/random.js';
import type { InitialState, MembershipChange, ProgressInfo, RaftConfig, RaftCoreApi, Status } from './api.js';
import {
    applyMembershipChange, decodeConfiguration, describeConfiguration, emptyConfiguration, encodeConfiguration,
    findServer, isVoter, roleOf, sameConfiguration, validateConfiguration, voterIds,
} from './configuration.js';
import { RaftLog } from './log.js';
import type {
    AppendEntries, AppendEntriesResponse, InstallSnapshot, Message, RequestVote, RequestVoteResponse,
} from './messages.js';
import { Progress } from './progress.js';
import { majorityValue, voteResult } from './quorum.js';
import { ReadOnly } from './read-only.js';
import type { Outcome, RaftRole, Ready, ReadState, SnapshotToSend, SoftState } from './ready.js';
import { EntryType } from './types.js';
import type { Configuration, Entry, HardState, LogIndex, NodeId, SnapshotMeta, Term } from './types.js';

// lib/logger.ts also holds the JSON logger (which reads the clock), so only its type is
// imported here and the default is this local no-op.
const noop = (): void => undefined;
const silentLogger: Logger = {
    trace: noop, debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger,
};

interface ResolvedConfig {
    readonly id: NodeId;
    readonly electionTimeoutTicks: number;
    readonly heartbeatIntervalTicks: number;
    readonly preVote: boolean;
    readonly checkQuorum: boolean;
    readonly inflightMessagesMax: number;
    readonly messageBytesMax: number;
    readonly catchUpRoundsMax: number;
    readonly catchUpRoundTicksMax: number;
    readonly random: Random;
    readonly logger: Logger;
}

/** Fills defaults and checks how the settings relate (etcd's Config.validate). */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
    const electionTimeoutTicks = config.electionTimeoutTicks ?? 10;
    const heartbeatIntervalTicks = config.heartbeatIntervalTicks ?? 1;
    const resolved: ResolvedConfig = {
        id: config.id,
        electionTimeoutTicks,
        heartbeatIntervalTicks,
        preVote: config.preVote ?? true,
        checkQuorum: config.checkQuorum ?? true,
        inflightMessagesMax: config.inflightMessagesMax ?? 64,
        messageBytesMax: config.messageBytesMax ?? 1024 * 1024,
        catchUpRoundsMax: config.catchUpRoundsMax ?? 10,
        catchUpRoundTicksMax: config.catchUpRoundTicksMax ?? electionTimeoutTicks,
        random: config.random,
        logger: config.logger ?? silentLogger,
    };
    const positive = (name: string, value: number): void => {
        if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer`);
    };
    if (config.id <= 0n || config.id >= 1n << 64n) throw new ConfigError('id must be a non-zero u64');
    positive('electionTimeoutTicks', electionTimeoutTicks);
    positive('heartbeatIntervalTicks', heartbeatIntervalTicks);
    positive('inflightMessagesMax', resolved.inflightMessagesMax);
    positive('messageBytesMax', resolved.messageBytesMax);
    positive('catchUpRoundsMax', resolved.catchUpRoundsMax);
    positive('catchUpRoundTicksMax', resolved.catchUpRoundTicksMax);
    if (heartbeatIntervalTicks >= electionTimeoutTicks) {
        throw new ConfigError('heartbeatIntervalTicks must be smaller than electionTimeoutTicks');
    }
    return resolved;
}

/** One configuration and the index of the entry (or snapshot) that carried it. */
interface ConfigurationAt {
    readonly index: LogIndex;
    readonly configuration: Configuration;
}

/** A promotion to voter waiting for the server to catch up (C-Raft's catch-up rounds). */
interface Promotion {
    readonly requestId: number;
    readonly id: NodeId;
    round: number;
    /** The round ends when the promotee's match reaches this index. */
    roundIndex: LogIndex;
    roundTicks: number;
}

interface PendingChange {
    readonly requestId: number;
    readonly index: LogIndex;
}

interface Transfer {
    readonly requestId: number;
    readonly target: NodeId;
    elapsedTicks: number;
    timeoutNowSent: boolean;
}

export class RaftCore implements RaftCoreApi {
    private readonly cfg: ResolvedConfig;
    readonly id: NodeId;
    private readonly logger: Logger;

    private term: Term;
    private vote: NodeId;
    private role: RaftRole = 'follower';
    private leader: NodeId = 0n;
    private readonly log: RaftLog;
    /** Configurations in the log, oldest first; the last one is in effect (§4.1). */
    private configurations: ConfigurationAt[];

    private electionElapsed = 0;
    private heartbeatElapsed = 0;
    private randomizedElectionTimeout = 0;
    private votes = new Map<NodeId, boolean>();

    // Leader state.
    private progress = new Map<NodeId, Progress>();
    private readOnly = new ReadOnly();
    private pendingChange: PendingChange | undefined;
    private promotion: Promotion | undefined;
    private transfer: Transfer | undefined;

    // Output accumulated for the next Ready.
    private messages: Message[] = [];
    private messagesAfterPersist: Message[] = [];
    private readStates: ReadState[] = [];
    private outcomes: Outcome[] = [];
    private snapshotsToSend: SnapshotToSend[] = [];
    private lastSoft: SoftState;
    private lastHard: HardState;
    /** The newest hard state the driver reported durable (hardStatePersisted). */
    private durable: HardState;

    constructor(config: RaftConfig, initial: InitialState) {
        this.cfg = resolveConfig(config);
        this.id = this.cfg.id;
        this.logger = this.cfg.logger;
        const { hardState, snapshot, entries } = initial;
        assert(hardState.term >= 0 && Number.isSafeInteger(hardState.term), 'bad initial term');
        this.term = hardState.term;
        this.vote = hardState.vote;
        this.log = new RaftLog(snapshot, entries, initial.appliedIndex);
        assert(this.log.lastTerm() <= this.term, `log term ${this.log.lastTerm()} above current term ${this.term}`);
        this.configurations = [snapshot === undefined
            ? { index: 0, configuration: emptyConfiguration }
            : { index: snapshot.configurationIndex, configuration: snapshot.configuration }];
        for (const entry of entries) this.noteConfigurationEntry(entry);
        this.resetElectionTimer();
        this.lastSoft = this.softState();
        this.lastHard = { term: this.term, vote: this.vote };
        this.durable = this.lastHard;
        this.checkInvariants();
    }

    // ---------------------------------------------------------------------------------------
    // Inputs

    tick(): void {
        if (this.role === 'leader') this.tickLeader();
        else this.tickElection();
        this.checkInvariants();
    }

    step(message: Message): void {
        assert(message.to === this.id, `message for ${message.to} stepped into ${this.id}`);
        assert(message.from !== this.id, 'message from self');
        this.stepMessage(message);
        this.checkInvariants();
    }

    propose(data: Uint8Array): { index: LogIndex; term: Term } {
        return this.proposeEntry(EntryType.command, data);
    }

    barrier(): { index: LogIndex; term: Term } {
        return this.proposeEntry(EntryType.barrier, new Uint8Array(0));
    }

    readIndex(requestId: number): void {
        this.requireLeader();
        this.readOnly.add(requestId);
        this.maybeStartReadRound();
        this.checkInvariants();
    }

    changeMembership(requestId: number, change: MembershipChange): void {
        this.requireLeader();
        if (this.transfer !== undefined) throw new BusyError('leadership transfer in progress');
        if (this.pendingChange !== undefined || this.promotion !== undefined || this.hasUncommittedConfiguration()) {
            throw new MembershipError('a membership change is already in progress');
        }
        // Ongaro's fix to single-server changes: no change before the leader committed an
        // entry of its own term, so an earlier leader's uncommitted change cannot be lost.
        if (!this.hasCommittedInTerm()) {
            throw new MembershipError('the leader has not committed an entry of its term yet');
        }
        const configuration = this.configuration();
        const next = applyMembershipChange(configuration, change);
        const current = findServer(configuration, change.id);
        if (change.kind === 'assign' && change.role === 'voter' && current !== undefined) {
            this.startPromotion(requestId, change.id);
        } else {
            this.appendConfiguration(requestId, next);
        }
        this.checkInvariants();
    }

    transferLeadership(requestId: number, target: NodeId): void {
        this.requireLeader();
        if (this.transfer !== undefined) throw new BusyError('leadership transfer already in progress');
        const configuration = this.configuration();
        let chosen = target;
        if (chosen === 0n) {
            let best: Progress | undefined;
            for (const id of voterIds(configuration)) {
                const pr = this.progress.get(id);
                if (id === this.id || pr === undefined) continue;
                if (best === undefined || pr.match > best.match) {
                    best = pr;
                    chosen = id;
                }
            }
            if (chosen === 0n) throw new MembershipError('no other voter to transfer leadership to');
        }
        if (chosen === this.id) throw new MembershipError('already leader');
        if (!isVoter(configuration, chosen)) throw new MembershipError(`server ${chosen} is not a voter`);
        this.logger.info({ id: this.id, target: chosen }, 'leadership transfer started');
        this.transfer = { requestId, target: chosen, elapsedTicks: 0, timeoutNowSent: false };
        // An append even if nothing new is due: if what is in flight to the target was lost,
        // its rejection starts the repair now rather than at the next heartbeat.
        this.maybeSendTimeoutNow(true);
        this.checkInvariants();
    }

    /**
     * Starts an election now, as if the election timeout had elapsed (pre-vote first when
     * enabled). Not part of RaftCoreApi: for tests and tools (etcd's Campaign).
     */
    campaignNow(): void {
        if (this.role === 'leader') return;
        this.campaign(this.cfg.preVote ? 'pre' : 'real');
        this.checkInvariants();
    }

    /**
     * The only voter of its configuration, at rest (a follower outside any leader's lease),
     * campaigns now rather than at its first tick: the driver calls this when it starts, so a
     * one-node cluster leads as soon as its node is up, as dqlite's does (raft_start elects the
     * sole voter at once; etcd's single-member start campaigns too). Otherwise nothing happens.
     * The election is the usual one (pre-vote, its vote made durable before it counts).
     */
    campaignIfSoleVoter(): void {
        if (!this.soleVoterAtRest()) return;
        this.campaign(this.cfg.preVote ? 'pre' : 'real');
        this.checkInvariants();
    }

    persisted(last: { index: LogIndex; term: Term }): void {
        if (this.log.stableTo(last.index, last.term) && this.role === 'leader') {
            // §10.2.1: the leader counts itself only for what its own disk holds.
            if (this.maybeCommit() && this.role === 'leader') this.broadcastCommit();
        }
        this.checkInvariants();
    }

    hardStatePersisted(state: HardState): void {
        assert(state.term <= this.term, `persisted term ${state.term} is ahead of ${this.term}`);
        if (state.term < this.durable.term) return;
        this.durable = { term: state.term, vote: state.vote };
        const ownVote = state.term === this.term && state.vote === this.id;
        if (this.role === 'candidate' && ownVote && !this.votes.has(this.id)) {
            this.votes.set(this.id, true);
            this.tallyVotes();
        }
        this.checkInvariants();
    }

    snapshotInstalled(index: LogIndex): void {
        this.log.snapshotInstalled(index);
        this.checkInvariants();
    }

    reportSnapshot(to: NodeId, ok: boolean): void {
        const pr = this.role === 'leader' ? this.progress.get(to) : undefined;
        if (pr === undefined || pr.state !== 'snapshot') return;
        if (!ok) pr.pendingSnapshot = 0;
        // Either way wait for the follower's answer (or the next heartbeat) before sending.
        pr.becomeProbe();
        pr.probeSent = true;
        this.logger.debug({ id: this.id, to, ok }, 'snapshot transfer finished');
    }

    reportUnreachable(to: NodeId): void {
        const pr = this.role === 'leader' ? this.progress.get(to) : undefined;
        if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
    }

    compact(meta: SnapshotMeta, keepTrailing: number): void {
        assert(Number.isInteger(keepTrailing) && keepTrailing >= 0, 'bad keepTrailing');
        assert(meta.index <= this.log.applied, `snapshot ${meta.index} beyond applied ${this.log.applied}`);
        assert(this.log.term(meta.index) === undefined || this.log.term(meta.index) === meta.term,
            `snapshot term ${meta.term} does not match the log at ${meta.index}`);
        const known = this.configurationAt(meta.index);
        assert(known === undefined || known.index === meta.configurationIndex,
            `snapshot configuration index ${meta.configurationIndex}, the log says ${known?.index}`);
        if (this.log.snapshot === undefined || meta.index > this.log.snapshot.index) this.log.snapshot = meta;
        const upTo = Math.max(0, meta.index - keepTrailing);
        if (upTo > this.log.base().index) {
            this.log.compact(upTo);
            this.dropConfigurationsBefore(upTo);
        }
        this.checkInvariants();
    }

    entries(lo: LogIndex, hi: LogIndex): readonly Entry[] {
        return this.log.slice(lo, hi);
    }

    hasReady(): boolean {
        return this.messages.length > 0 || this.messagesAfterPersist.length > 0 || this.readStates.length > 0
            || this.outcomes.length > 0 || this.snapshotsToSend.length > 0 || this.log.hasUnstable()
            || this.log.hasCommitted() || this.lastHard.term !== this.term || this.lastHard.vote !== this.vote
            || !sameSoftState(this.lastSoft, this.softState());
    }

    ready(): Ready {
        const soft = this.softState();
        const softState = sameSoftState(this.lastSoft, soft) ? undefined : soft;
        this.lastSoft = soft;
        const hard = { term: this.term, vote: this.vote };
        const hardState = hard.term === this.lastHard.term && hard.vote === this.lastHard.vote ? undefined : hard;
        this.lastHard = hard;
        const snapshot = this.log.takeRestore();
        const { truncateFrom, entries } = this.log.takeUnstable();
        const lastOne = entries.at(-1);
        const committedEntries = this.log.takeCommitted();
        const ready: Ready = {
            isEmpty: false,
            softState,
            hardState,
            snapshot,
            truncateFrom,
            entries,
            lastEntry: lastOne === undefined ? undefined : { index: lastOne.index, term: lastOne.term },
            messages: coalesceEmptyAppends(this.messages),
            messagesAfterPersist: this.messagesAfterPersist,
            committedEntries,
            readStates: this.readStates,
            outcomes: this.outcomes,
            snapshotsToSend: this.snapshotsToSend,
        };
        this.messages = [];
        this.messagesAfterPersist = [];
        this.readStates = [];
        this.outcomes = [];
        this.snapshotsToSend = [];
        const isEmpty = softState === undefined && hardState === undefined && snapshot === undefined
            && truncateFrom === undefined && entries.length === 0 && ready.messages.length === 0
            && ready.messagesAfterPersist.length === 0 && committedEntries.length === 0
            && ready.readStates.length === 0 && ready.outcomes.length === 0 && ready.snapshotsToSend.length === 0;
        return { ...ready, isEmpty };
    }

    status(): Status {
        const progress: ProgressInfo[] = [];
        if (this.role === 'leader') {
            for (const [id, pr] of this.progress) {
                const { match, next, state, lastContactTicks } = pr;
                progress.push({ id, match, next, state, lastContactTicks });
            }
        }
        return {
            id: this.id,
            soft: this.softState(),
            hardState: { term: this.term, vote: this.vote },
            commitIndex: this.log.committed,
            lastIndex: this.log.lastIndex(),
            lastTerm: this.log.lastTerm(),
            persistedIndex: this.log.persisted,
            firstIndex: this.log.firstIndex(),
            snapshotIndex: this.log.snapshot?.index ?? 0,
            progress,
        };
    }

    /** The applied index: the last entry handed out in Ready.committedEntries (or restored). */
    appliedIndex(): LogIndex {
        return this.log.applied;
    }

    // ---------------------------------------------------------------------------------------
    // Configuration bookkeeping

    private configuration(): Configuration {
        return (this.configurations.at(-1) as ConfigurationAt).configuration;
    }

    private configurationIndex(): LogIndex {
        return (this.configurations.at(-1) as ConfigurationAt).index;
    }

    private configurationAt(index: LogIndex): ConfigurationAt | undefined {
        let found: ConfigurationAt | undefined;
        for (const c of this.configurations) if (c.index <= index) found = c;
        return found;
    }

    private hasUncommittedConfiguration(): boolean {
        return this.configurationIndex() > this.log.committed;
    }

    private noteConfigurationEntry(entry: Entry): void {
        if (entry.type !== EntryType.change) return;
        const configuration = decodeConfiguration(entry.data);
        this.configurations.push({ index: entry.index, configuration });
    }

    /** §4.1 rollback: a truncated change entry takes its configuration with it. */
    private rollBackConfigurations(truncatedAt: LogIndex): void {
        const before = this.configurationIndex();
        this.configurations = this.configurations.filter((c) => c.index < truncatedAt);
        assert(this.configurations.length > 0, 'configuration history emptied by a truncation');
        if (this.configurationIndex() !== before) {
            this.logger.info({ id: this.id, index: this.configurationIndex() }, 'configuration rolled back');
        }
    }

    private dropConfigurationsBefore(index: LogIndex): void {
        let keepFrom = 0;
        this.configurations.forEach((c, i) => {
            if (c.index <= index) keepFrom = i;
        });
        this.configurations = this.configurations.slice(keepFrom);
    }

    private isSelfVoter(): boolean {
        return isVoter(this.configuration(), this.id);
    }

    /**
     * May this server start an election? A voter of the latest configuration may; so may a
     * voter of the last committed one (or of any later one) while a change that removes or
     * demotes it is still uncommitted. Without the second case a cluster can deadlock: a leader that appended its
     * own removal and then lost leadership holds the longest log, so the remaining voters
     * (still on the old configuration) need its vote and cannot win, while it, on the new
     * configuration, would never campaign (sim seed 1447). It counts votes with its latest
     * configuration as every candidate does, wins without counting itself, and steps down as
     * soon as the change commits.
     */
    private mayCampaign(): boolean {
        if (this.isSelfVoter()) return true;
        if (voterIds(this.configuration()).length === 0) return false;
        // Any configuration from the last one known committed onwards may be the one the
        // others use (after a restart the commit index may be far behind: sim seed 20322).
        const from = this.configurationAt(this.log.committed)?.index ?? 0;
        return this.configurations.some((c) => c.index >= from && isVoter(c.configuration, this.id));
    }

    /** Spares get no traffic at all unless they are being promoted (C-Raft `triggerAll`). */
    private shouldReplicateTo(id: NodeId): boolean {
        if (id === this.id) return false;
        const role = roleOf(this.configuration(), id);
        if (role === 'voter' || role === 'standby') return true;
        return role === 'spare' && this.promotion?.id === id;
    }

    // ---------------------------------------------------------------------------------------
    // Role transitions

    private softState(): SoftState {
        return { role: this.role, term: this.term, leader: this.leader, configuration: this.configuration() };
    }

    private resetElectionTimer(): void {
        const base = this.cfg.electionTimeoutTicks;
        this.electionElapsed = 0;
        this.randomizedElectionTimeout = base + this.cfg.random.int(base);
        assert(this.randomizedElectionTimeout >= base && this.randomizedElectionTimeout < 2 * base,
            `random election timeout ${this.randomizedElectionTimeout} outside [${base}, ${2 * base})`);
    }

    private setTerm(term: Term): void {
        assert(term >= this.term, `term would decrease from ${this.term} to ${term}`);
        if (term !== this.term) {
            this.term = term;
            this.vote = 0n;
        }
    }

    private becomeFollower(term: Term, leader: NodeId): void {
        const wasLeader = this.role === 'leader';
        if (wasLeader) this.endLeadership(term > this.term);
        this.setTerm(term);
        this.role = 'follower';
        this.leader = leader;
        this.votes.clear();
        this.heartbeatElapsed = 0;
        this.resetElectionTimer();
        if (wasLeader) this.logger.info({ id: this.id, term }, 'stepped down');
    }

    /** Fails or settles everything that only makes sense while leading. */
    private endLeadership(newerTerm: boolean): void {
        for (const requestId of this.readOnly.drain()) {
            this.outcomes.push({ kind: 'read', requestId, ok: false, error: new NotLeaderError('leadership lost') });
        }
        if (this.pendingChange !== undefined) {
            this.outcomes.push({
                kind: 'change', requestId: this.pendingChange.requestId, ok: false,
                error: new IndeterminateError('leadership lost before the change committed'),
            });
            this.pendingChange = undefined;
        }
        if (this.promotion !== undefined) {
            this.outcomes.push({
                kind: 'change', requestId: this.promotion.requestId, ok: false,
                error: new NotLeaderError('leadership lost during catch-up'),
            });
            this.promotion = undefined;
        }
        if (this.transfer !== undefined) {
            // A newer term after a transfer means someone (normally the target) took over.
            this.outcomes.push(newerTerm
                ? { kind: 'transfer', requestId: this.transfer.requestId, ok: true }
                : { kind: 'transfer', requestId: this.transfer.requestId, ok: false, error: new NotLeaderError() });
            this.transfer = undefined;
        }
        this.progress.clear();
        this.readOnly = new ReadOnly();
    }

    private becomePreCandidate(): void {
        assert(this.role !== 'leader');
        this.role = 'preCandidate';
        this.leader = 0n;
        this.votes.clear();
        this.resetElectionTimer();
        this.logger.info({ id: this.id, term: this.term }, 'became pre-candidate');
    }

    private becomeCandidate(): void {
        assert(this.role !== 'leader');
        this.setTerm(this.term + 1);
        this.vote = this.id;
        this.role = 'candidate';
        this.leader = 0n;
        this.votes.clear();
        this.resetElectionTimer();
        this.logger.info({ id: this.id, term: this.term }, 'became candidate');
    }

    private becomeLeader(): void {
        assert(this.role === 'candidate', 'only a candidate becomes leader');
        this.role = 'leader';
        this.leader = this.id;
        this.votes.clear();
        this.heartbeatElapsed = 0;
        this.electionElapsed = 0;
        this.readOnly = new ReadOnly();
        this.progress.clear();
        this.syncProgress();
        this.logger.info({ id: this.id, term: this.term }, 'became leader');
        // §8 / dissertation §6.4: a no-op of the new term lets the leader learn, by committing
        // it, which entries are committed; it also unblocks reads and membership changes.
        this.appendEntry(EntryType.barrier, new Uint8Array(0));
    }

    /** Creates progress for every server of the configuration (but this one), drops the rest. */
    private syncProgress(): void {
        const servers = this.configuration().servers;
        for (const id of [...this.progress.keys()]) {
            if (!servers.some((s) => s.id === id)) this.progress.delete(id);
        }
        for (const server of servers) {
            if (server.id === this.id || this.progress.has(server.id)) continue;
            const pr = new Progress(this.log.lastIndex() + 1, this.cfg.inflightMessagesMax);
            pr.recentActive = true;
            this.progress.set(server.id, pr);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Elections (§5.2, pre-vote §9.6, stickiness §4.2.3)

    private tickElection(): void {
        this.electionElapsed++;
        if (!this.mayCampaign()) {
            // Standbys, spares and removed servers never start elections.
            if (this.electionElapsed >= this.randomizedElectionTimeout) this.resetElectionTimer();
            return;
        }
        // The only voter has no one to wait for: no leader of its configuration can exist
        // but itself, so it campaigns at its first tick instead of after a whole election
        // timeout (a one-node cluster starts leading at once, as dqlite's does). Only timing
        // changes: the election itself is the usual one (pre-vote, its vote made durable); a
        // candidate still waiting for its vote to be durable is left alone until the timeout.
        if (this.electionElapsed >= this.randomizedElectionTimeout || this.soleVoterAtRest()) {
            this.campaign(this.cfg.preVote ? 'pre' : 'real');
        }
    }

    private soleVoterAtRest(): boolean {
        return this.mayCampaign() && this.role === 'follower' && this.isSoleVoter() && !this.inLease();
    }

    private isSoleVoter(): boolean {
        const voters = voterIds(this.configuration());
        return voters.length === 1 && voters[0] === this.id;
    }

    private campaign(kind: 'pre' | 'real' | 'transfer'): void {
        if (!this.mayCampaign()) return;
        if (kind === 'pre') this.becomePreCandidate();
        else this.becomeCandidate();
        const preVote = kind === 'pre';
        const voteTerm = preVote ? this.term + 1 : this.term;
        // A pre-vote changes nothing, so it counts itself at once. A real vote counts itself
        // at once when another voter exists: winning then needs a vote that can only come back
        // after our RequestVote left, i.e. after our term and vote were durable. A lone voter
        // waits for hardStatePersisted(), or a crash could let it lead this term twice.
        const others = voterIds(this.configuration()).some((v) => v !== this.id);
        if (preVote || others || (this.durable.term === this.term && this.durable.vote === this.id)) {
            this.votes.set(this.id, true);
            if (this.tallyVotes()) return;
        }
        for (const voter of voterIds(this.configuration())) {
            if (voter === this.id) continue;
            const request: RequestVote = {
                type: 'requestVote', term: voteTerm, from: this.id, to: voter, lastIndex: this.log.lastIndex(),
                lastTerm: this.log.lastTerm(), preVote, transfer: kind === 'transfer',
            };
            if (preVote) this.messages.push(request);
            else this.messagesAfterPersist.push(request);
        }
    }

    /** Acts on the election result so far; returns true when the election ended. */
    private tallyVotes(): boolean {
        const result = voteResult(voterIds(this.configuration()), this.votes);
        if (result === 'won') {
            if (this.role === 'preCandidate') this.campaign('real');
            else this.becomeLeader();
            return true;
        }
        if (result === 'lost') {
            this.becomeFollower(this.term, 0n);
            return true;
        }
        return false;
    }

    /** In lease: we heard from a leader less than an election timeout ago (§4.2.3). */
    private inLease(): boolean {
        return this.leader !== 0n && this.electionElapsed < this.cfg.electionTimeoutTicks;
    }

    private handleRequestVote(m: RequestVote): void {
        const canVote = this.vote === m.from || (this.vote === 0n && this.leader === 0n && this.role !== 'leader')
            || (m.preVote && m.term > this.term);
        const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);
        if (granted && !m.preVote) {
            this.vote = m.from;
            this.electionElapsed = 0;
        }
        // A granted pre-vote answers in the term the candidate asked for, so it is counted.
        const response: RequestVoteResponse = {
            type: 'requestVoteResponse', term: granted && m.preVote ? m.term : this.term, from: this.id, to: m.from,
            granted, preVote: m.preVote,
        };
        this.messagesAfterPersist.push(response);
        this.logger.debug({ id: this.id, candidate: m.from, term: m.term, granted, preVote: m.preVote }, 'vote');
    }

    private handleVoteResponse(m: RequestVoteResponse): void {
        const expectPre = this.role === 'preCandidate';
        if (m.preVote !== expectPre) return;
        if (this.role !== 'preCandidate' && this.role !== 'candidate') return;
        this.votes.set(m.from, m.granted);
        this.tallyVotes();
    }

    // ---------------------------------------------------------------------------------------
    // Message dispatch

    private stepMessage(m: Message): void {
        if (m.term > this.term) {
            if (m.type === 'requestVote') {
                // Stickiness: a server that heard from a leader recently ignores elections
                // unless the leader itself asked for one (transfer).
                if (!m.transfer && this.inLease()) {
                    this.logger.debug({ id: this.id, from: m.from, term: m.term }, 'vote ignored: in lease');
                    return;
                }
                if (m.preVote) {
                    this.handleRequestVote(m);
                    return;
                }
                this.becomeFollower(m.term, 0n);
            } else if (m.type === 'requestVoteResponse' && m.preVote && m.granted) {
                // Answers in the pre-vote's future term; no term change.
            } else {
                const leader = m.type === 'appendEntries' || m.type === 'installSnapshot' || m.type === 'timeoutNow'
                    ? m.from : 0n;
                this.becomeFollower(m.term, leader);
            }
        } else if (m.term < this.term) {
            this.stepStale(m);
            return;
        }
        switch (m.type) {
            case 'requestVote':
                this.handleRequestVote(m);
                return;
            case 'requestVoteResponse':
                this.handleVoteResponse(m);
                return;
            default:
                break;
        }
        if (this.role === 'leader') this.stepLeader(m);
        else this.stepFollowerOrCandidate(m);
    }

    /** A message from an older term. */
    private stepStale(m: Message): void {
        if (m.type === 'appendEntries' || m.type === 'installSnapshot') {
            // Tell a deposed leader about the newer term so it steps down (with pre-vote and
            // check-quorum it may otherwise never learn it).
            this.messagesAfterPersist.push({
                type: 'appendEntriesResponse', term: this.term, from: this.id, to: m.from, success: false,
                index: m.type === 'appendEntries' ? m.prevIndex : m.meta.index, hintIndex: 0, hintTerm: 0,
                readRound: 0,
            });
        } else if (m.type === 'requestVote' && m.preVote) {
            // Lets a pre-candidate with a stale term catch up instead of retrying forever.
            this.messagesAfterPersist.push({
                type: 'requestVoteResponse', term: this.term, from: this.id, to: m.from, granted: false, preVote: true,
            });
        }
    }

    private stepFollowerOrCandidate(m: Message): void {
        switch (m.type) {
            case 'appendEntries':
                if (this.role !== 'follower') this.becomeFollower(this.term, m.from);
                this.electionElapsed = 0;
                this.leader = m.from;
                this.handleAppendEntries(m);
                return;
            case 'installSnapshot':
                if (this.role !== 'follower') this.becomeFollower(this.term, m.from);
                this.electionElapsed = 0;
                this.leader = m.from;
                this.handleInstallSnapshot(m);
                return;
            case 'timeoutNow':
                if (this.role === 'follower' && this.isSelfVoter()) {
                    this.logger.info({ id: this.id, from: m.from }, 'timeout now: campaigning');
                    this.campaign('transfer');
                }
                return;
            case 'appendEntriesResponse':
                return;
            default:
                return;
        }
    }

    private stepLeader(m: Message): void {
        switch (m.type) {
            case 'appendEntriesResponse':
                this.handleAppendEntriesResponse(m);
                return;
            case 'appendEntries':
            case 'installSnapshot':
                assert(false, `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
                return;
            default:
                return;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Follower side of replication (§5.3)

    private handleAppendEntries(m: AppendEntries): void {
        m.entries.forEach((e, k) => {
            assert(e.index === m.prevIndex + 1 + k && e.term <= m.term && e.term >= m.prevTerm,
                `malformed AppendEntries from ${m.from}: ${e.index}@${e.term} after ${m.prevIndex}@${m.prevTerm}`);
        });
        const committed = this.log.committed;
        let prevIndex = m.prevIndex;
        let prevTerm = m.prevTerm;
        let entries = m.entries;
        if (prevIndex < committed) {
            // Everything up to our commit index matches the leader's log (Leader
            // Completeness): skip it, and continue from our commit index.
            const skip = Math.min(entries.length, committed - prevIndex);
            for (const entry of entries.slice(0, skip)) {
                const ours = this.log.term(entry.index);
                assert(ours === undefined || ours === entry.term,
                    `committed entry ${entry.index} differs from the leader's`);
            }
            entries = entries.slice(skip);
            prevIndex = committed;
            prevTerm = this.log.term(committed) as Term;
        }
        if (!this.log.matchTerm(prevIndex, prevTerm)) {
            const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
            this.respondAppend(m, { success: false, index: m.prevIndex, hintIndex: hint.index, hintTerm: hint.term });
            return;
        }
        const truncatedAt = this.log.appendFromLeader(entries);
        if (truncatedAt !== undefined) this.rollBackConfigurations(truncatedAt);
        for (const entry of entries) {
            if (entry.index > this.configurationIndex()) this.noteConfigurationEntry(entry);
        }
        const lastNew = prevIndex + entries.length;
        this.log.commitTo(Math.min(m.commit, lastNew));
        this.respondAppend(m, { success: true, index: lastNew, hintIndex: 0, hintTerm: 0 });
    }

    private respondAppend(m: AppendEntries,
        r: { success: boolean; index: LogIndex; hintIndex: LogIndex; hintTerm: Term }): void {
        const response: AppendEntriesResponse = {
            type: 'appendEntriesResponse', term: this.term, from: this.id, to: m.from, ...r, readRound: m.readRound,
        };
        // An acknowledgement that claims only what is already durable (a heartbeat, or a
        // resent append, up to our persisted index, in a term already durable) need not wait
        // behind the writes in flight: it goes out at once, so read rounds and check-quorum
        // are not delayed by fsyncs.
        const durableClaim = r.success && m.entries.length === 0 && r.index <= this.log.persisted
            && this.durable.term === this.term;
        if (durableClaim) this.messages.push(response);
        else this.messagesAfterPersist.push(response);
    }

    private handleInstallSnapshot(m: InstallSnapshot): void {
        const meta = m.meta;
        assert(meta.term <= m.term && meta.configurationIndex <= meta.index,
            `malformed InstallSnapshot from ${m.from}`);
        let index: LogIndex;
        if (meta.index <= this.log.committed) {
            index = this.log.committed;
        } else if (this.log.matchTerm(meta.index, meta.term)) {
            // We already have the snapshot's last entry: just learn that it is committed.
            this.log.commitTo(meta.index);
            index = meta.index;
        } else {
            this.logger.info({ id: this.id, index: meta.index, term: meta.term }, 'restoring snapshot');
            this.log.restore(meta);
            this.configurations = [{ index: meta.configurationIndex, configuration: meta.configuration }];
            index = meta.index;
        }
        this.messagesAfterPersist.push({
            type: 'appendEntriesResponse', term: this.term, from: this.id, to: m.from, success: true, index,
            hintIndex: 0, hintTerm: 0, readRound: 0,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Leader side of replication

    private requireLeader(): void {
        if (this.role === 'leader') return;
        const server = this.leader === 0n ? undefined : findServer(this.configuration(), this.leader);
        const hint = server === undefined ? undefined : { id: server.id, address: server.address };
        throw new NotLeaderError('not leader', hint);
    }

    private hasCommittedInTerm(): boolean {
        return this.log.term(this.log.committed) === this.term;
    }

    private proposeEntry(type: EntryType, data: Uint8Array): { index: LogIndex; term: Term } {
        this.requireLeader();
        if (this.transfer !== undefined) throw new BusyError('leadership transfer in progress');
        const result = this.appendEntry(type, data);
        this.checkInvariants();
        return result;
    }

    private appendEntry(type: EntryType, data: Uint8Array): { index: LogIndex; term: Term } {
        assert(this.role === 'leader');
        const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
        this.log.appendAll([entry]);
        this.noteConfigurationEntry(entry);
        this.broadcastAppend();
        // A one-voter cluster may commit as soon as the entry is durable: persisted() does it.
        return { index: entry.index, term: entry.term };
    }

    private appendConfiguration(requestId: number, next: Configuration): void {
        validateConfiguration(next);
        const { index } = this.appendEntry(EntryType.change, encodeConfiguration(next));
        this.pendingChange = { requestId, index };
        this.logger.info({ id: this.id, index, configuration: describeConfiguration(next) }, 'configuration appended');
        this.syncProgress();
        this.broadcastAppend();
        // The voter set changed: fewer voters may already agree on something newer.
        if (this.maybeCommit() && this.role === 'leader') this.broadcastCommit();
    }

    private broadcastAppend(): void {
        for (const id of this.progress.keys()) {
            if (this.shouldReplicateTo(id)) this.sendAppend(id, false);
        }
    }

    /**
     * Sends the entries `id` is missing, if its progress allows; returns whether a message was
     * produced. In replicate state this pipelines up to the inflight bound.
     */
    private sendAppend(id: NodeId, sendIfEmpty: boolean): boolean {
        const pr = this.progress.get(id);
        assert(pr !== undefined, `no progress for ${id}`);
        let sent = false;
        while (!pr.isPaused()) {
            const last = this.log.lastIndex();
            assert(pr.next <= last + 1, `next ${pr.next} of ${id} beyond last ${last}`);
            const prevIndex = pr.next - 1;
            const prevTerm = this.log.term(prevIndex);
            if (prevTerm === undefined) {
                // The follower needs compacted entries. If our own snapshot of them is still
                // being installed there is nothing to send yet: retry at the next heartbeat.
                const meta = this.log.snapshot;
                if (meta === undefined || meta.index < this.log.base().index) return sent;
                this.sendSnapshot(id, pr);
                return true;
            }
            const entries = pr.next <= last ? this.log.slice(pr.next, last + 1, this.cfg.messageBytesMax) : [];
            if (entries.length === 0 && (!sendIfEmpty || sent)) break;
            this.messages.push({
                type: 'appendEntries', term: this.term, from: this.id, to: id, prevIndex, prevTerm, entries,
                commit: this.log.committed, readRound: this.readOnly.round,
            });
            pr.sentEntries(prevIndex + entries.length, entries.length);
            sent = true;
            if (pr.state !== 'replicate') break;
        }
        return sent;
    }

    private sendSnapshot(id: NodeId, pr: Progress): void {
        const meta = this.log.snapshot;
        assert(meta !== undefined, `no snapshot to send to ${id} (next ${pr.next})`);
        pr.becomeSnapshot(meta.index);
        const message: InstallSnapshot = { type: 'installSnapshot', term: this.term, from: this.id, to: id, meta };
        this.snapshotsToSend.push({ to: id, meta, message });
        this.logger.info({ id: this.id, to: id, index: meta.index }, 'sending snapshot');
    }

    /** A heartbeat: empty AppendEntries at the follower's match, so it can never be rejected. */
    private sendHeartbeat(id: NodeId, pr: Progress): void {
        const matchTerm = this.log.term(pr.match);
        const prevIndex = matchTerm === undefined ? 0 : pr.match;
        this.messages.push({
            type: 'appendEntries', term: this.term, from: this.id, to: id, prevIndex, prevTerm: matchTerm ?? 0,
            entries: [], commit: Math.min(this.log.committed, pr.match), readRound: this.readOnly.round,
        });
    }

    private broadcastHeartbeat(): void {
        for (const [id, pr] of this.progress) {
            if (!this.shouldReplicateTo(id)) continue;
            if (pr.state === 'probe') {
                // The heartbeat doubles as the next probe.
                pr.probeSent = false;
                this.sendAppend(id, true);
            } else {
                if (pr.state === 'replicate' && pr.inflights.isFull()) pr.inflights.freeFirst();
                this.sendHeartbeat(id, pr);
            }
        }
    }

    private handleAppendEntriesResponse(m: AppendEntriesResponse): void {
        const pr = this.progress.get(m.from);
        if (pr === undefined) return;
        pr.recentActive = true;
        pr.lastContactTicks = 0;
        if (m.readRound > pr.readRoundAck) {
            pr.readRoundAck = m.readRound;
            this.maybeConfirmReads();
            if (this.role !== 'leader') return;
        }
        if (!m.success) {
            const probe = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
            if (pr.maybeDecreaseTo(m.index, probe)) {
                this.logger.debug({ id: this.id, from: m.from, next: pr.next }, 'append rejected, backing off');
                if (pr.state === 'replicate') pr.becomeProbe();
                this.sendAppend(m.from, true);
            }
            return;
        }
        const wasPaused = pr.isPaused();
        const probedIndex = pr.next - 1;
        if (pr.maybeUpdate(m.index)) {
            if (pr.state === 'probe') {
                // Only the answer to the current probe proves where the follower is; an older
                // answer (e.g. from before a snapshot) just raises match and we keep probing.
                if (m.index >= probedIndex) pr.becomeReplicate();
            } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
                pr.becomeProbe();
                pr.becomeReplicate();
            } else if (pr.state === 'replicate') {
                pr.inflights.freeLE(m.index);
            }
            if (this.maybeCommit()) {
                if (this.role !== 'leader') return;
                this.broadcastCommit();
            } else if (this.shouldReplicateTo(m.from)) {
                // A follower that was paused may have missed commit index updates.
                this.sendAppend(m.from, wasPaused);
            }
            this.checkPromotion();
            this.maybeSendTimeoutNow();
        } else if (pr.match < this.log.lastIndex() && this.shouldReplicateTo(m.from)) {
            // An answer that acknowledges nothing new (a heartbeat's) from a follower that is
            // behind: probe at next, so that messages lost in the pipeline show up as a
            // rejection instead of stalling replication.
            this.sendAppend(m.from, true);
        }
    }

    /**
     * After the commit index advanced: sends entries to every follower that lacks some. With
     * `notify`, a follower that lacks nothing gets an empty AppendEntries carrying the new
     * commit index at once (a leader about to step down); otherwise it learns the index from
     * the next append or heartbeat (at most one heartbeat interval later), as in
     * libraft: an immediate notice cost a message and its answer per follower and commit —
     * at one writer, half of all peer traffic — and a follower only needs the commit index
     * to apply, which nothing waits for (a new leader applies its committed entries first).
     * A follower in replicate state with entries beyond the commit index on their way is
     * skipped either way: acknowledging them leads to the next commit.
     */
    private broadcastCommit(notify = false): void {
        for (const [id, pr] of this.progress) {
            if (!this.shouldReplicateTo(id)) continue;
            const inFlight = pr.state === 'replicate' && pr.next - 1 > this.log.committed;
            if (!inFlight) this.sendAppend(id, notify);
        }
    }

    /** §5.3/§5.4.2: commit the largest index a majority of voters stored, if of this term. */
    private maybeCommit(): boolean {
        if (this.role !== 'leader') return false;
        const matches = voterIds(this.configuration()).map((id) =>
            id === this.id ? this.log.persisted : (this.progress.get(id)?.match ?? 0));
        const candidate = Math.min(majorityValue(matches), this.log.lastIndex());
        if (candidate <= this.log.committed || this.log.term(candidate) !== this.term) return false;
        this.log.commitTo(candidate);
        this.onLeaderCommit();
        return true;
    }

    private onLeaderCommit(): void {
        if (this.pendingChange !== undefined && this.pendingChange.index <= this.log.committed) {
            const { requestId, index } = this.pendingChange;
            this.outcomes.push({ kind: 'change', requestId, ok: true, index });
            this.pendingChange = undefined;
        }
        this.maybeStartReadRound();
        if (!this.hasUncommittedConfiguration() && !this.isSelfVoter()) {
            // Removed or demoted leader: it led until its own removal committed (§4.2.2).
            this.logger.info({ id: this.id }, 'leader no longer a voter: stepping down');
            this.broadcastCommit(true);
            this.handOverOnRemoval();
            this.becomeFollower(this.term, 0n);
        }
    }

    /**
     * A leader whose removal (or demotion) just committed asks the most up-to-date voter that
     * already holds its whole log to campaign at once (TimeoutNow, §3.10), so the cluster does
     * not wait an election timeout for a new leader. Without such a voter it just steps down.
     */
    private handOverOnRemoval(): void {
        let best: NodeId = 0n;
        for (const id of voterIds(this.configuration())) {
            const pr = this.progress.get(id);
            if (id !== this.id && pr !== undefined && pr.match === this.log.lastIndex() && best === 0n) best = id;
        }
        if (best === 0n) return;
        this.logger.info({ id: this.id, target: best }, 'handing over leadership after removal');
        this.messages.push({ type: 'timeoutNow', term: this.term, from: this.id, to: best });
    }

    private tickLeader(): void {
        this.heartbeatElapsed++;
        this.electionElapsed++;
        for (const pr of this.progress.values()) pr.lastContactTicks++;
        if (this.transfer !== undefined) {
            this.transfer.elapsedTicks++;
            if (this.transfer.elapsedTicks >= this.cfg.electionTimeoutTicks) {
                this.logger.info({ id: this.id, target: this.transfer.target }, 'leadership transfer timed out');
                this.outcomes.push({
                    kind: 'transfer', requestId: this.transfer.requestId, ok: false,
                    error: new TimeoutError('leadership transfer timed out'),
                });
                this.transfer = undefined;
            }
        }
        if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
            this.electionElapsed = 0;
            if (this.cfg.checkQuorum && !this.quorumActive()) {
                this.logger.info({ id: this.id, term: this.term }, 'check-quorum failed: stepping down');
                this.becomeFollower(this.term, 0n);
                return;
            }
            for (const pr of this.progress.values()) pr.recentActive = false;
        }
        this.tickPromotion();
        if (this.role !== 'leader') return;
        if (this.heartbeatElapsed >= this.cfg.heartbeatIntervalTicks) {
            this.heartbeatElapsed = 0;
            this.broadcastHeartbeat();
        }
    }

    /** Check-quorum (§6.2): did a majority of voters answer during the last election timeout? */
    private quorumActive(): boolean {
        const voters = voterIds(this.configuration());
        const answers = new Map<NodeId, boolean>();
        for (const id of voters) answers.set(id, id === this.id || this.progress.get(id)?.recentActive === true);
        return voteResult(voters, answers) === 'won';
    }

    // ---------------------------------------------------------------------------------------
    // Membership: catch-up rounds (§4.2.1) before a promotion to voter

    private startPromotion(requestId: number, id: NodeId): void {
        this.promotion = { requestId, id, round: 1, roundIndex: this.log.lastIndex(), roundTicks: 0 };
        this.logger.info({ id: this.id, promotee: id }, 'catch-up started');
        const pr = this.progress.get(id);
        assert(pr !== undefined, `no progress for promotee ${id}`);
        pr.lastContactTicks = 0;
        if (!this.checkPromotion()) this.sendAppend(id, true);
    }

    /** Ends the current round if the promotee reached its index; returns true if promoted. */
    private checkPromotion(): boolean {
        const p = this.promotion;
        if (p === undefined) return false;
        const pr = this.progress.get(p.id);
        if (pr === undefined) {
            this.failPromotion('promotee left the configuration');
            return false;
        }
        if (pr.match < p.roundIndex) return false;
        if (p.roundTicks < this.cfg.catchUpRoundTicksMax) {
            this.promotion = undefined;
            this.logger.info({ id: this.id, promotee: p.id, rounds: p.round }, 'caught up: promoting');
            const next = applyMembershipChange(this.configuration(), { kind: 'assign', id: p.id, role: 'voter' });
            this.appendConfiguration(p.requestId, next);
            return true;
        }
        if (p.round >= this.cfg.catchUpRoundsMax) {
            this.failPromotion(`not caught up after ${p.round} rounds`);
            return false;
        }
        p.round++;
        p.roundIndex = this.log.lastIndex();
        p.roundTicks = 0;
        return this.checkPromotion();
    }

    private tickPromotion(): void {
        const p = this.promotion;
        if (p === undefined) return;
        p.roundTicks++;
        const pr = this.progress.get(p.id);
        if (pr !== undefined && pr.lastContactTicks >= this.cfg.electionTimeoutTicks) {
            this.failPromotion('promotee unreachable');
        }
    }

    private failPromotion(reason: string): void {
        const p = this.promotion;
        assert(p !== undefined, 'no promotion to fail');
        this.logger.info({ id: this.id, promotee: p.id, reason }, 'catch-up failed');
        this.outcomes.push({ kind: 'change', requestId: p.requestId, ok: false, error: new MembershipError(reason) });
        this.promotion = undefined;
    }

    // ---------------------------------------------------------------------------------------
    // Leadership transfer (§3.10)

    private maybeSendTimeoutNow(probe = false): void {
        const t = this.transfer;
        if (t === undefined || t.timeoutNowSent || this.role !== 'leader') return;
        const pr = this.progress.get(t.target);
        if (pr === undefined) return;
        if (pr.match === this.log.lastIndex()) {
            t.timeoutNowSent = true;
            this.messages.push({ type: 'timeoutNow', term: this.term, from: this.id, to: t.target });
            this.logger.info({ id: this.id, target: t.target }, 'sent timeout now');
        } else {
            this.sendAppend(t.target, probe);
        }
    }

    // ---------------------------------------------------------------------------------------
    // ReadIndex (§6.4)

    private maybeStartReadRound(): void {
        if (this.role !== 'leader' || !this.hasCommittedInTerm() || !this.readOnly.wantsRound()) return;
        const round = this.readOnly.startRound(this.log.committed);
        for (const [id, pr] of this.progress) {
            if (this.shouldReplicateTo(id) && isVoter(this.configuration(), id)) this.sendHeartbeat(id, pr);
        }
        this.logger.debug({ id: this.id, round }, 'read round started');
        this.maybeConfirmReads();
    }

    private maybeConfirmReads(): void {
        if (this.role !== 'leader') return;
        const acks = voterIds(this.configuration()).map((id) =>
            id === this.id ? this.readOnly.round : (this.progress.get(id)?.readRoundAck ?? 0));
        const confirmed = majorityValue(acks);
        for (const read of this.readOnly.confirm(confirmed)) this.readStates.push(read);
        this.maybeStartReadRound();
    }

    // ---------------------------------------------------------------------------------------

    /** The commit index at the last check: it must never go down within one incarnation. */
    private lastCheckedCommit = 0;

    private checkInvariants(): void {
        this.log.checkInvariants();
        if (this.log.committed < this.lastCheckedCommit) {
            assert(false, `commit went down from ${this.lastCheckedCommit} to ${this.log.committed}`);
        }
        this.lastCheckedCommit = this.log.committed;
        if (this.log.lastTerm() > this.term) {
            assert(false, `log term ${this.log.lastTerm()} above current term ${this.term}`);
        }
        assert(this.role === 'leader' || this.progress.size === 0, 'progress kept outside leadership');
        assert(this.transfer === undefined || this.role === 'leader', 'transfer outside leadership');
        assert(this.role !== 'leader' || this.leader === this.id, 'leader field of a leader');
        assert(this.role !== 'candidate' || this.vote === this.id, 'candidate voted for another');
    }
}

/**
 * Drops every empty AppendEntries (heartbeat, commit notice, empty probe) that is followed in
 * the same Ready by another AppendEntries of the same term to the same server: the later one
 * carries a commit index and a read round at least as high, resets the follower's election
 * timer as well and is answered as well (a rejection too echoes the read round). Several
 * commits in one Ready (answers of both followers, a burst of proposals) then cost one notice
 * per follower instead of one each.
 */
function coalesceEmptyAppends(messages: Message[]): Message[] {
    let later: Set<string> | undefined;
    let dropped = false;
    const keep: boolean[] = new Array<boolean>(messages.length).fill(true);
    for (let i = messages.length - 1; i >= 0; i--) {
        const m = messages[i] as Message;
        if (m.type !== 'appendEntries') continue;
        const key = `${m.to}/${m.term}`;
        later ??= new Set();
        if (m.entries.length === 0 && later.has(key)) {
            keep[i] = false;
            dropped = true;
        }
        later.add(key);
    }
    return dropped ? messages.filter((_, i) => keep[i]) : messages;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
    return a.role === b.role && a.term === b.term && a.leader === b.leader
        && (a.configuration === b.configuration || sameConfiguration(a.configuration, b.configuration));
}
