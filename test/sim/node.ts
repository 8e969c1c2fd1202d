// One simulated server: a raft core plus the driver around it, following THE DRIVER CONTRACT
// in src/raft/ready.ts step by step (send `messages`; persist snapshot → hard state →
// truncation → entries in one ordered write; when durable, report snapshotInstalled()/
// hardStatePersisted()/persisted() and release `messagesAfterPersist`; apply committed entries in order;
// release read states once applied; settle outcomes; stream snapshots).
//
// Persistence goes through the real LogStore (via the production LogStorePort) on the node's
// SimFs (disk.ts); completions run in issue order, as in the production driver (src/node/
// driver.ts), and a storage failure stops the node like a crash.
//
// The driver also feeds the global checker everything it sees: the log as the core shapes it
// (a mirror with rolling prefix hashes), the durable disk, what the state machine applied, and
// every message as it leaves the node.

import { StorageError, TqliteError } from '../../src/lib/errors.js';
import { crashPlans } from '../../src/lib/sim-fs.js';
import type { CrashPlan } from '../../src/lib/sim-fs.js';
import type { Bootstrap, InitialState, MembershipChange, RaftCoreApi, Status } from '../../src/raft/api.js';
import type { InstallSnapshot, Message } from '../../src/raft/messages.js';
import type { Outcome, RaftRole, Ready, ReadState, SoftState } from '../../src/raft/ready.js';
import { EntryType } from '../../src/raft/types.js';
import type { Configuration, Entry, SnapshotMeta } from '../../src/raft/types.js';
import { SimDisk } from './disk.js';
import type { AfterPersistMessage, PendingWrite, StoredSnapshot } from './disk.js';
import { SimFailure, safety } from './failure.js';
import { LogView } from './log-view.js';
import { EMPTY_CONFIGURATION, KvStateMachine } from './state-machine.js';
import type { SmSnapshot } from './state-machine.js';
import type { Simulation } from './simulation.js';
import { EventKind } from './types.js';
import type { ClientOp } from './types.js';

/** Bound on Ready rounds after one input; a core that never settles is a crash. */
const READY_ROUNDS_MAX = 10_000;
const STORED_SNAPSHOTS_MAX = 4;

export class SimNode {
    readonly id: number;
    readonly nodeId: bigint;
    readonly address: string;
    readonly disk: SimDisk;
    incarnation = 0;
    isUp = false;
    /** Loading its log (between start() and the end of the event's settling). */
    isStarting = false;
    isRetired = false;
    core: RaftCoreApi | undefined = undefined;
    mirror = new LogView({ keepEntries: false });
    sm = new KvStateMachine();
    role: RaftRole = 'follower';
    term = 0;
    leader = 0n;
    configuration: Configuration = EMPTY_CONFIGURATION;
    /** The configuration before the last change the core reported (for the commit check). */
    previousConfiguration: Configuration = EMPTY_CONFIGURATION;
    /** From the last status(): the core's commit and last index. */
    commitIndex = 0;
    lastIndex = 0;
    persistedIndex = 0;
    /** Indexes of the configuration-change entries in the mirror (for the one-change-at-a-time check). */
    changeIndexes: number[] = [];
    /** Per "candidate:term:preVote": was the candidate's log up-to-date when its request arrived? */
    readonly voteRequests = new Map<string, boolean>();
    /** True when the node was leader at some point of the current drive (a leader may commit and step down). */
    ledDuringDrive = false;
    /** Index of the last committed entry the core handed out (snapshot installs jump it). */
    handedOut = 0;
    /** Request ids this incarnation gave the core (reads, changes, transfers). */
    readonly requestIds = new Set<number>();
    readonly pendingWrites = new Map<number, ClientOp>();
    readonly pendingReads = new Map<number, ClientOp>();
    readonly pendingChanges = new Map<number, MembershipChange>();
    private servingReads: { op: ClientOp; index: number }[] = [];
    private applyQueue: Entry[] = [];
    private pendingInstalls = 0;
    private readonly receivedSnapshots = new Map<number, SmSnapshot>();
    readonly storedSnapshots = new Map<number, StoredSnapshot>();
    private lastSnapshotIndex = 0;
    /**
     * A snapshot this node took is being written: no other is taken meanwhile (as the production
     * Snapshots.maybeTake). Without this, a follower that learns of hundreds of committed entries
     * at once queued one snapshot per snapshotEveryEntries of them, each installed in turn (one
     * directory fsync each) ahead of every later log write in the completion order: seed 684409990
     * froze its persistence for more than the convergence bound.
     */
    private takingSnapshot = false;
    /** Completions of issued writes, in issue order (as the production driver's persistChain). */
    private persistChain: Promise<void> = Promise.resolve();
    private readonly sim: Simulation;
    readonly tickPeriodMs: number;

    constructor(sim: Simulation, id: number) {
        this.sim = sim;
        this.id = id;
        this.nodeId = BigInt(id);
        this.address = `sim-${id}`;
        this.disk = new SimDisk(id, sim, sim.options.segmentBytes, sim.options.durableWrites);
        const skew = sim.options.clockSkew;
        const random = sim.random.fork(`clock-${id}`);
        this.tickPeriodMs = sim.options.tickMs * (1 + (random.float() * 2 - 1) * skew);
    }

    get isLeader(): boolean {
        return this.isUp && this.role === 'leader';
    }

    // ----- lifecycle -------------------------------------------------------------------------

    /** Writes a new cluster's bootstrap state to the disk, durably (before the first start). */
    bootstrap(bootstrap: Bootstrap): Promise<void> {
        safety(this.incarnation === 0, () => `node ${this.id} bootstrapped after it ran`);
        return this.disk.bootstrap(bootstrap.hardState, bootstrap.entries);
    }

    /**
     * Starts a new incarnation from what is durable on the simulated disk: the real LogStore
     * loads the log (taking no simulated time); the core starts once it did, while the
     * simulation settles the event that called start().
     */
    start(): void {
        safety(!this.isUp && !this.isStarting && !this.isRetired, () => `node ${this.id} started twice`);
        this.incarnation++;
        this.isStarting = true;
        const incarnation = this.incarnation;
        this.sim.noteAsync();
        this.disk.load().then(
            (loaded) => this.sim.guard(() => {
                if (incarnation !== this.incarnation) return;
                this.isStarting = false;
                this.startCore(loaded);
            }),
            (error: unknown) => this.sim.guard(() => {
                if (error instanceof SimFailure) throw error;
                throw new SimFailure('safety', `node ${this.id}: the log store fails to load after a restart: ` +
                    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
            }));
    }

    private startCore(loaded: Awaited<ReturnType<SimDisk['load']>>): void {
        this.isUp = true;
        const snapshot = loaded.snapshot;
        const snapshotIndex = snapshot === undefined ? 0 : snapshot.meta.index;
        const initial: InitialState = {
            hardState: loaded.hardState,
            snapshot: snapshot?.meta,
            entries: loaded.entries,
            appliedIndex: snapshotIndex,
        };
        this.sm = new KvStateMachine();
        this.mirror = new LogView({ keepEntries: false });
        if (snapshot !== undefined) {
            this.rememberSnapshot(snapshot);
            this.sm.restore(snapshot.data);
            this.mirror.reset(snapshot.meta.index, snapshot.meta.term, snapshot.data.stateHash);
        }
        this.changeIndexes = [];
        for (const entry of initial.entries) {
            this.mirror.append(entry);
            if (entry.type === EntryType.change) this.changeIndexes.push(entry.index);
        }
        this.voteRequests.clear();
        this.role = 'follower';
        this.term = loaded.hardState.term;
        this.leader = 0n;
        this.configuration = snapshot?.meta.configuration ?? EMPTY_CONFIGURATION;
        this.previousConfiguration = this.configuration;
        this.commitIndex = snapshotIndex;
        this.lastIndex = this.mirror.lastIndex;
        this.handedOut = snapshotIndex;
        this.lastSnapshotIndex = snapshotIndex;
        this.applyQueue = [];
        this.pendingInstalls = 0;
        this.servingReads = [];
        this.receivedSnapshots.clear();
        this.requestIds.clear();
        this.persistChain = Promise.resolve();
        this.takingSnapshot = false;
        const options = this.sim.options;
        this.sim.armStorageFault(this);
        this.core = this.sim.factory.create({
            id: this.nodeId,
            electionTimeoutTicks: options.electionTimeoutTicks,
            heartbeatIntervalTicks: options.heartbeatIntervalTicks,
            preVote: options.preVote,
            checkQuorum: options.checkQuorum,
            inflightMessagesMax: options.inflightMessagesMax,
            messageBytesMax: options.messageBytesMax,
            random: this.sim.random.fork(`core-${this.id}-${this.incarnation}`),
        }, initial);
        this.sim.checker.onStart(this);
        this.scheduleTick(this.sim.random.fork(`phase-${this.id}-${this.incarnation}`).float() * this.tickPeriodMs);
        this.drive();
    }

    /**
     * A power cut: loses everything volatile, and the node's SimFs loses its unsynced writes —
     * all of them, or (in some seeds) a random subset, a prefix, or a torn write at sector
     * granularity: the disk may persist what it was never asked to sync, in any order.
     */
    crash(why = 'crash'): void {
        if (!this.isUp) return;
        const counters = this.sim.counters;
        counters.crashes++;
        const writes = this.disk.inFlight.length;
        const { pending, lost } = this.disk.crash(this.crashPlan());
        if (lost > 0) counters.crashesWithUnsyncedWrites++;
        this.sim.trace(`${why} node ${this.id} (role ${this.role}, term ${this.term}, ${writes} writes in flight, ` +
            `${pending} unsynced file-system ops, ${lost} lost)`);
        this.stop();
    }

    private crashPlan(): CrashPlan {
        const random = this.sim.faultRandom;
        if (!random.chance(this.sim.options.crashPartialWriteProbability)) return crashPlans.dropAll();
        const pending = this.disk.fs.pendingOps().length;
        const x = random.float();
        if (x < 0.4) return crashPlans.random(random, random.pick([0.2, 0.5, 0.8]), 0.2);
        if (x < 0.7) return crashPlans.prefix(random.int(pending + 1));
        const position = random.int(pending + 1);
        return crashPlans.tear(position, random.int(8));
    }

    /** The store failed (an injected I/O error): the node stops at once, as a crash. */
    storageFailed(error: StorageError): void {
        if (!this.isUp) return;
        this.sim.counters.storageFailures++;
        this.crash(`storage failure (${error.message.split('\n')[0]}): stop`);
    }

    /** Stops for good (removed from the cluster). */
    retire(): void {
        if (this.isRetired) return;
        this.sim.trace(`retire node ${this.id}`);
        if (this.isUp) this.stop();
        this.disk.abandon();
        this.isRetired = true;
    }

    private stop(): void {
        const status = 'unknown';
        this.isUp = false;
        this.incarnation++;
        this.core = undefined;
        this.persistChain = Promise.resolve();
        this.role = 'follower';
        for (const op of this.pendingWrites.values()) this.sim.clients.settle(op, status);
        for (const op of this.pendingReads.values()) this.sim.clients.settle(op, status);
        for (const { op } of this.servingReads) this.sim.clients.settle(op, status);
        this.pendingWrites.clear();
        this.pendingReads.clear();
        this.pendingChanges.clear();
        this.servingReads = [];
        this.applyQueue = [];
    }

    private scheduleTick(delayMs: number): void {
        const incarnation = this.incarnation;
        this.sim.schedule(delayMs, EventKind.tick, this.id, () => {
            if (incarnation !== this.incarnation) return;
            this.coreOf().tick();
            this.drive();
            this.scheduleTick(this.tickPeriodMs);
        });
    }

    coreOf(): RaftCoreApi {
        const core = this.core;
        if (core === undefined) throw new SimFailure('crash', `node ${this.id} has no core (down)`);
        return core;
    }

    // ----- inputs from the outside -----------------------------------------------------------

    step(message: Message): void {
        const commitBefore = this.commitIndex;
        if (message.type === 'requestVote') {
            // §5.4.1: remember whether the candidate's log is at least as up-to-date as ours now,
            // to check any vote granted for this request (checker.onSend).
            const mirror = this.mirror;
            const upToDate = message.lastTerm > mirror.lastTerm ||
                (message.lastTerm === mirror.lastTerm && message.lastIndex >= mirror.lastIndex);
            // A duplicate may arrive after the log grew: a grant answers whichever copy was up-to-date.
            const key = `${message.from}:${message.term}:${message.preVote}`;
            this.voteRequests.set(key, upToDate || this.voteRequests.get(key) === true);
        }
        this.coreOf().step(message);
        this.drive();
        if (message.type === 'appendEntries' && this.isUp) {
            // Figure 2, AppendEntries receiver rule 5: commitIndex = min(leaderCommit, index of
            // the last new entry) — entries past that are not known to match the leader's log.
            const bound = Math.max(commitBefore, Math.min(message.commit, message.prevIndex + message.entries.length));
            safety(this.commitIndex <= bound,
                () => `node ${this.id}: commit index ${this.commitIndex} after an AppendEntries (prev ` +
                    `${message.prevIndex}, ${message.entries.length} entries, leader commit ${message.commit}) is ` +
                    `beyond the last new entry (was ${commitBefore})`);
        }
    }

    receiveSnapshot(data: SmSnapshot, message: Message): void {
        this.receivedSnapshots.set(data.index, data);
        this.step(message);
    }

    /** Client write: returns false when the core refused it at once (not leader, busy). */
    propose(op: ClientOp, data: Uint8Array): boolean {
        let placed: { index: number; term: number };
        try {
            placed = this.coreOf().propose(data);
        } catch (error) {
            if (error instanceof TqliteError) return false;
            throw error;
        }
        safety(this.role === 'leader', () => `node ${this.id} accepted a proposal as ${this.role}`);
        op.index = placed.index;
        op.term = placed.term;
        op.node = this.id;
        op.incarnation = this.incarnation;
        this.pendingWrites.set(placed.index, op);
        this.drive();
        return true;
    }

    readIndex(op: ClientOp): boolean {
        op.requiredIndex = this.sim.checker.committedMax;
        this.requestIds.add(op.id);
        try {
            this.coreOf().readIndex(op.id);
        } catch (error) {
            if (error instanceof TqliteError) return false;
            throw error;
        }
        op.node = this.id;
        op.incarnation = this.incarnation;
        this.pendingReads.set(op.id, op);
        this.drive();
        return true;
    }

    changeMembership(requestId: number, change: MembershipChange): boolean {
        this.requestIds.add(requestId);
        try {
            this.coreOf().changeMembership(requestId, change);
        } catch (error) {
            if (error instanceof TqliteError) return false;
            throw error;
        }
        this.pendingChanges.set(requestId, change);
        this.drive();
        return true;
    }

    transferLeadership(requestId: number, target: bigint): boolean {
        this.requestIds.add(requestId);
        try {
            this.coreOf().transferLeadership(requestId, target);
        } catch (error) {
            if (error instanceof TqliteError) return false;
            throw error;
        }
        this.drive();
        return true;
    }

    // ----- the Ready loop --------------------------------------------------------------------

    /** Drains every Ready the core has, then lets the checker look at the node's status. */
    drive(): void {
        const core = this.core;
        if (core === undefined) return;
        const incarnation = this.incarnation;
        this.ledDuringDrive = this.role === 'leader';
        let rounds = 0;
        while (core.hasReady()) {
            rounds++;
            if (rounds > READY_ROUNDS_MAX) {
                throw new SimFailure('crash', `node ${this.id}: hasReady() stays true after ${rounds} rounds`);
            }
            this.handleReady(core.ready());
            if (incarnation !== this.incarnation) return;
        }
        const status = core.status();
        this.sim.checker.afterDrive(this, status);
        this.noteStatus(status);
    }

    private noteStatus(status: Status): void {
        this.commitIndex = status.commitIndex;
        this.lastIndex = status.lastIndex;
        this.persistedIndex = status.persistedIndex;
    }

    private handleReady(r: Ready): void {
        this.checkShape(r);
        if (r.softState !== undefined) this.onSoftState(r.softState);
        if (r.hardState !== undefined) this.sim.checker.onHardState(this, r.hardState);
        this.updateMirror(r);
        for (const message of r.messages) this.send(message, this.expectedPrefixOf(message));
        this.enqueuePersist(r);
        for (const entry of r.committedEntries) this.handOut(entry);
        for (const readState of r.readStates) this.onReadState(readState);
        for (const outcome of r.outcomes) this.onOutcome(outcome);
        for (const target of r.snapshotsToSend) this.streamSnapshot(target.to, target.meta, target.message);
    }

    private checkShape(r: Ready): void {
        const hasWork = r.softState !== undefined || r.hardState !== undefined || r.snapshot !== undefined ||
            r.truncateFrom !== undefined || r.entries.length > 0 || r.messages.length > 0 ||
            r.messagesAfterPersist.length > 0 || r.committedEntries.length > 0 || r.readStates.length > 0 ||
            r.outcomes.length > 0 || r.snapshotsToSend.length > 0;
        safety(r.isEmpty === !hasWork, () => `node ${this.id}: Ready.isEmpty=${r.isEmpty} but hasWork=${hasWork}`);
        const last = r.entries[r.entries.length - 1];
        if (last === undefined) {
            safety(r.lastEntry === undefined, () => `node ${this.id}: Ready.lastEntry set without entries`);
        } else {
            safety(r.lastEntry !== undefined && r.lastEntry.index === last.index && r.lastEntry.term === last.term,
                () => `node ${this.id}: Ready.lastEntry ${JSON.stringify(r.lastEntry)} is not the last entry ` +
                    `${last.index}/${last.term}`);
        }
    }

    private onSoftState(soft: SoftState): void {
        const wasLeader = this.role === 'leader';
        const previousTerm = this.term;
        this.role = soft.role;
        this.leader = soft.leader;
        if (!sameConfiguration(soft.configuration, this.configuration)) {
            this.previousConfiguration = this.configuration;
            this.configuration = soft.configuration;
        }
        safety(soft.term >= previousTerm, () => `node ${this.id}: term goes back from ${previousTerm} to ${soft.term}`);
        this.term = soft.term;
        if (soft.role === 'leader') this.ledDuringDrive = true;
        if (soft.role === 'leader' && (!wasLeader || soft.term !== previousTerm)) {
            this.sim.checker.onBecomeLeader(this, soft.term);
            this.sim.nemesis.onLeaderElected(this);
        }
        if (soft.role === 'candidate' && this.sim.checker.noteCandidate(this, soft.term)) {
            this.sim.counters.splitVotes++;
        }
        if (wasLeader && (soft.role !== 'leader' || soft.term !== previousTerm)) this.onLeadershipLost();
        this.sim.trace(`node ${this.id} ${soft.role} term ${soft.term} leader ${soft.leader}`);
    }

    private onLeadershipLost(): void {
        const counters = this.sim.counters;
        counters.leaderStepDowns++;
        if (!this.sim.network.reachesMajority(this)) counters.partitionedLeaderStepDowns++;
        // The driver fails pending proposals on leadership loss: their outcome is unknown.
        for (const op of this.pendingWrites.values()) this.sim.clients.settle(op, 'unknown');
        this.pendingWrites.clear();
    }

    /** Keeps the mirror of the core's log in step with the Ready, checking each change. */
    private updateMirror(r: Ready): void {
        const checker = this.sim.checker;
        if (r.snapshot !== undefined) {
            const meta = r.snapshot;
            safety(this.role !== 'leader', () => `node ${this.id}: a leader installs a snapshot`);
            const data = this.receivedSnapshots.get(meta.index);
            safety(data !== undefined && data.term === meta.term,
                () => `node ${this.id}: Ready.snapshot ${meta.index}/${meta.term} was never received`);
            safety(meta.index >= this.handedOut,
                () => `node ${this.id}: snapshot ${meta.index} is behind the handed-out index ${this.handedOut}`);
            checker.onInstallSnapshot(this, meta, data);
            this.mirror.reset(meta.index, meta.term, data.stateHash);
            this.changeIndexes = [];
            this.handedOut = meta.index;
            this.sim.counters.snapshotInstalls++;
        }
        if (r.truncateFrom !== undefined) {
            const from = r.truncateFrom;
            safety(this.role !== 'leader',
                () => `node ${this.id}: leader of term ${this.term} truncates its log from ${from} (append-only)`);
            safety(from > this.mirror.baseIndex,
                () => `node ${this.id}: truncateFrom ${from} reaches into the snapshot ${this.mirror.baseIndex}`);
            checker.onTruncate(this, from);
            if (from <= this.mirror.lastIndex) this.sim.counters.followerTruncations++;
            this.mirror.truncateFrom(from);
            this.changeIndexes = this.changeIndexes.filter((i) => i < from);
        }
        for (const entry of r.entries) {
            safety(entry.index === this.mirror.lastIndex + 1,
                () => `node ${this.id}: entry ${entry.index} does not follow the last index ${this.mirror.lastIndex}`);
            if (this.role === 'leader') {
                safety(entry.term === this.term,
                    () => `node ${this.id}: leader of term ${this.term} appends an entry of term ${entry.term}`);
            }
            const prefix = this.mirror.append(entry);
            if (entry.type === EntryType.change) this.changeIndexes.push(entry.index);
            checker.onAppend(this, entry.index, entry.term, prefix);
        }
    }

    private expectedPrefixOf(message: Message): number | undefined {
        if (message.type !== 'appendEntriesResponse' || !message.success) return undefined;
        return this.mirror.prefixAt(message.index);
    }

    private enqueuePersist(r: Ready): void {
        const after: AfterPersistMessage[] = r.messagesAfterPersist.map((message) => ({
            message,
            expectedPrefix: this.expectedPrefixOf(message),
        }));
        let install: StoredSnapshot | undefined;
        if (r.snapshot !== undefined) {
            install = { meta: r.snapshot, data: this.receivedSnapshots.get(r.snapshot.index) as SmSnapshot };
            this.pendingInstalls++;
        }
        const hasWrite = install !== undefined || r.hardState !== undefined || r.truncateFrom !== undefined ||
            r.entries.length > 0;
        if (!hasWrite && after.length === 0) return;
        const write: PendingWrite = {
            install,
            hardState: r.hardState,
            truncateFrom: r.truncateFrom,
            entries: r.entries,
            lastEntry: r.lastEntry,
            after,
            take: undefined,
        };
        this.whenDurable(write, this.disk.persist(write));
    }

    /**
     * Runs the completion of `write` once `durable` resolved and every write issued before it
     * completed (issue order, as the production driver's persistChain). A rejection is a
     * storage failure (the store already told the simulation, which stopped the node) or a bug.
     */
    private whenDurable(write: PendingWrite, durable: Promise<void>): void {
        durable.catch(() => undefined);
        const incarnation = this.incarnation;
        const sim = this.sim;
        this.persistChain = this.persistChain.then(() => durable).then(
            () => sim.guard(() => {
                if (incarnation === this.incarnation) this.completeWrite(write);
            }),
            (error: unknown) => sim.guard(() => {
                if (incarnation !== this.incarnation) return;
                if (error instanceof StorageError && this.disk.store?.failure !== undefined) {
                    this.storageFailed(error);
                    return;
                }
                throw new SimFailure('crash', `node ${this.id}: a disk write failed: ` +
                    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
            }));
    }

    /** The write became durable: record it, tell the core, release what waited for it. */
    private completeWrite(write: PendingWrite): void {
        this.disk.acknowledge(write);
        const core = this.coreOf();
        if (write.install !== undefined) {
            this.pendingInstalls--;
            this.sm.restore(write.install.data);
            this.applyQueue = this.applyQueue.filter((e) => e.index > write.install!.meta.index);
            this.rememberSnapshot(write.install);
            core.snapshotInstalled(write.install.meta.index);
        }
        if (write.hardState !== undefined) core.hardStatePersisted(write.hardState);
        if (write.lastEntry !== undefined) core.persisted(write.lastEntry);
        if (write.take !== undefined) {
            this.takingSnapshot = false;
            this.afterSnapshotTaken(write.take.snapshot, write.take.keepTrailing);
        }
        for (const { message, expectedPrefix } of write.after) this.send(message, expectedPrefix);
        this.drainApply();
        this.drive();
    }

    private send(message: Message, expectedPrefix: number | undefined): void {
        safety(message.from === this.nodeId, () => `node ${this.id} sends a message from ${message.from}`);
        safety(message.to !== this.nodeId, () => `node ${this.id} sends a message to itself`);
        this.sim.checker.onSend(this, message, expectedPrefix);
        this.sim.network.send(this, message);
    }

    // ----- applying --------------------------------------------------------------------------

    private handOut(entry: Entry): void {
        safety(entry.index === this.handedOut + 1,
            () => `node ${this.id}: committed entry ${entry.index} handed out after ${this.handedOut}`);
        safety(this.mirror.termAt(entry.index) === entry.term,
            () => `node ${this.id}: committed entry ${entry.index}/${entry.term} is not the one in its log ` +
                `(term ${this.mirror.termAt(entry.index)})`);
        safety(this.disk.holds(entry.index, this.mirror.prefixAt(entry.index)) || this.pendingInstalls > 0,
            () => `node ${this.id}: committed entry ${entry.index} handed out before it is durable locally`);
        this.handedOut = entry.index;
        this.applyQueue.push(entry);
        this.drainApply();
    }

    private drainApply(): void {
        if (this.pendingInstalls > 0) {
            this.serveReads();
            return;
        }
        const queue = this.applyQueue;
        let i = 0;
        for (; i < queue.length; i++) {
            const entry = queue[i] as Entry;
            this.sm.apply(entry, this.sim.factory.decodeConfiguration);
            this.sim.checker.onApply(this, entry, this.sm.stateHash);
            this.settleWrite(entry);
            this.maybeTakeSnapshot();
        }
        if (i > 0) this.applyQueue = queue.slice(i);
        // A snapshot due while the previous one was being written (this runs after each write).
        this.maybeTakeSnapshot();
        this.serveReads();
    }

    private settleWrite(entry: Entry): void {
        const op = this.pendingWrites.get(entry.index);
        if (op === undefined) return;
        this.pendingWrites.delete(entry.index);
        if (entry.term === op.term) {
            op.prefix = this.sm.stateHash;
            this.sim.clients.settle(op, 'ok');
        } else {
            this.sim.clients.settle(op, 'fail');
        }
    }

    private onReadState(readState: ReadState): void {
        safety(this.requestIds.has(readState.requestId),
            () => `node ${this.id}: read state for unknown request ${readState.requestId}`);
        const op = this.pendingReads.get(readState.requestId);
        if (op === undefined) return;
        this.pendingReads.delete(readState.requestId);
        safety(readState.index >= op.requiredIndex,
            () => `node ${this.id}: read ${op.id} released at index ${readState.index}, but index ` +
                `${op.requiredIndex} was known committed when it began (stale read)`);
        op.readIndex = readState.index;
        this.servingReads.push({ op, index: readState.index });
        this.serveReads();
    }

    private serveReads(): void {
        if (this.servingReads.length === 0) return;
        const still: { op: ClientOp; index: number }[] = [];
        for (const item of this.servingReads) {
            if (this.pendingInstalls === 0 && this.sm.appliedIndex >= item.index) {
                item.op.servedAt = this.sm.appliedIndex;
                item.op.value = this.sm.read(item.op.key);
                this.sim.clients.settle(item.op, 'ok');
            } else {
                still.push(item);
            }
        }
        this.servingReads = still;
    }

    private onOutcome(outcome: Outcome): void {
        safety(this.requestIds.has(outcome.requestId),
            () => `node ${this.id}: outcome for unknown request ${outcome.requestId}`);
        if (outcome.kind === 'read') {
            const op = this.pendingReads.get(outcome.requestId);
            if (op === undefined) return;
            this.pendingReads.delete(outcome.requestId);
            this.sim.clients.settle(op, 'fail');
        } else if (outcome.kind === 'change') {
            const change = this.pendingChanges.get(outcome.requestId);
            this.pendingChanges.delete(outcome.requestId);
            this.sim.nemesis.onChangeOutcome(this, change, outcome.ok);
        } else {
            if (outcome.ok) this.sim.counters.transfersOk++;
            else this.sim.counters.transfersFailed++;
            this.sim.trace(`node ${this.id} transfer ${outcome.requestId} ok=${outcome.ok}`);
        }
    }

    // ----- snapshots -------------------------------------------------------------------------

    private maybeTakeSnapshot(): void {
        const every = this.sim.options.snapshotEveryEntries;
        if (every === 0 || this.takingSnapshot || this.sm.appliedIndex - this.lastSnapshotIndex < every) return;
        this.takingSnapshot = true;
        const data = this.sm.take();
        this.lastSnapshotIndex = data.index;
        const meta: SnapshotMeta = {
            index: data.index,
            term: data.term,
            configuration: data.configuration,
            configurationIndex: data.configurationIndex,
        };
        this.sim.counters.snapshotsTaken++;
        const write: PendingWrite = {
            install: undefined,
            hardState: undefined,
            truncateFrom: undefined,
            entries: [],
            lastEntry: undefined,
            after: [],
            take: { snapshot: { meta, data }, keepTrailing: this.sim.options.snapshotKeepTrailing },
        };
        this.whenDurable(write, this.disk.storeSnapshot(write));
    }

    private afterSnapshotTaken(snapshot: StoredSnapshot, keepTrailing: number): void {
        if (this.disk.snapshot !== snapshot) return;
        this.rememberSnapshot(snapshot);
        const core = this.coreOf();
        if (core.status().snapshotIndex >= snapshot.meta.index) return;
        const before = core.status().firstIndex;
        core.compact(snapshot.meta, keepTrailing);
        const after = core.status().firstIndex;
        // The stored log follows the core's (as the production driver's compact()); a failure
        // is reported by the store itself (onFailure), which stops the node.
        if (after <= before) return;
        const upTo = after - 1;
        this.disk.compact(upTo).catch((error: unknown) => this.sim.guard(() => {
            if (error instanceof StorageError) return;
            throw new SimFailure('crash', `node ${this.id}: compacting the stored log to ${upTo} failed: ` +
                `${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        }));
    }

    private rememberSnapshot(snapshot: StoredSnapshot): void {
        this.storedSnapshots.set(snapshot.meta.index, snapshot);
        if (this.storedSnapshots.size > STORED_SNAPSHOTS_MAX) {
            const oldest = Math.min(...this.storedSnapshots.keys());
            this.storedSnapshots.delete(oldest);
        }
    }

    private streamSnapshot(to: bigint, meta: SnapshotMeta, message: InstallSnapshot): void {
        const stored = this.storedSnapshots.get(meta.index);
        safety(stored !== undefined && stored.meta.term === meta.term,
            () => `node ${this.id}: asked to send snapshot ${meta.index}/${meta.term} it does not have`);
        safety(message.to === to && message.from === this.nodeId && message.meta.index === meta.index,
            () => `node ${this.id}: SnapshotToSend's message does not match its target/meta`);
        this.sim.streamSnapshot(this, to, stored, message);
    }

    // ----- reports for the checkers ----------------------------------------------------------

    describe(): string {
        return `node ${this.id} up=${this.isUp} role=${this.role} term=${this.term} ` +
            `commit=${this.commitIndex} ` +
            `last=${this.lastIndex} persisted=${this.persistedIndex} disk=${this.disk.log.lastIndex}` +
            `/${this.disk.inFlight.length} applied=${this.sm.appliedIndex} ` +
            `hash=${(this.sm.stateHash >>> 0).toString(16)}`;
    }
}

export function sameConfiguration(a: Configuration, b: Configuration): boolean {
    if (a === b) return true;
    if (a.servers.length !== b.servers.length) return false;
    for (let i = 0; i < a.servers.length; i++) {
        const x = a.servers[i];
        const y = b.servers[i];
        if (x === undefined || y === undefined || x.id !== y.id || x.role !== y.role) return false;
    }
    return true;
}
