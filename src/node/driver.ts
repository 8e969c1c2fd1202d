// The driver loop of one node: the only code that calls the raft core, and the only place that
// awaits between the steps of the driver contract (src/raft/ready.ts). Everything that happens
// from outside — a tick, a peer message, a client request — calls one input method, which
// feeds the core and kick()s. kick() schedules one re-entrancy-guarded pass (setImmediate) that
// drains every Ready the core has; the core is never called from inside another core call.
//
// Ordering guarantees, each kept by one promise chain:
// - persistence: Ready writes are persisted in production order (persistChain); after each,
//   persisted()/snapshotInstalled() are fed back and messagesAfterPersist go out.
// - application: committed entries and snapshots are applied in order (applyChain); waiters
//   for an index are settled right after it is applied.
// A failure of either chain is a storage or state machine failure: the driver fails, every
// pending request is rejected, and the owner (the node) stops.

import { assert } from '../lib/assert.js';
import { Deferred } from '../lib/deferred.js';
import {
    ClosedError, IndeterminateError, NotLeaderError, TqliteError, UnavailableError,
} from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { TimerSet, type Clock, type Timer } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { MembershipChange, RaftCoreApi, Status } from '../raft/api.js';
import type { Message } from '../raft/messages.js';
import type { Ready, SoftState } from '../raft/ready.js';
import { EntryType, type Entry, type LogIndex, type NodeId, type Term } from '../raft/types.js';
import type { LogPort, StateMachinePort, TransportPort } from './ports.js';

export interface DriverOptions {
    readonly core: RaftCoreApi;
    readonly log: LogPort;
    readonly transport: TransportPort;
    readonly stateMachine: StateMachinePort;
    readonly clock: Clock;
    /** Milliseconds per raft tick. Default 100. */
    readonly tickMs?: number;
    /** The index the state machine already holds (its durable index): nothing at or below is applied. */
    readonly appliedIndex: LogIndex;
    readonly logger?: Logger;
    /** Called once when the driver fails (disk or state machine error). */
    readonly onFailure?: (error: unknown) => void;
    /** Called after every Ready that changed the soft state (role, leader, term, configuration). */
    readonly onSoftState?: (soft: SoftState) => void;
    /** Called after committed entries were applied, with the new applied index. */
    readonly onApplied?: (index: LogIndex) => void;
    /**
     * Lease reads (off by default: 0). When > 0, a read arriving within this many milliseconds
     * (of `clock`) after the start of a ReadIndex round that a quorum confirmed in this term is
     * served without a round of its own (dissertation §6.4.1). Safe only when the core runs
     * with check-quorum (the default) and every voter's election timeout is at least the one
     * the lease is derived from: use leaseReadMsFor(). See readBarrier() for the argument.
     */
    readonly leaseReadMs?: number;
    /**
     * After this node stops leading, how long its appended but not yet applied proposals wait
     * to learn their fate before they fail with IndeterminateError. Within it, a proposal whose
     * entry is applied with its own term succeeds (the next leader committed it, as after a
     * graceful handover), and one whose index gets another term's entry fails at once. Default
     * 3000 ms; 0 fails them at once.
     */
    readonly outcomeAfterStepDownMs?: number;
}

/**
 * The longest safe lease for lease reads: a follower that received a message of the leader's
 * round refuses every vote (stickiness) for at least electionTimeoutTicks − 1 of its ticks,
 * counted from a time after the round started; the leader's lease must end before, even if
 * the follower's clock runs `maxClockDrift` faster, with one more tick of margin.
 */
export function leaseReadMsFor(tickMs: number, electionTimeoutTicks: number, maxClockDrift = 0.1): number {
    return Math.max(0, Math.floor(((electionTimeoutTicks - 1) * tickMs) / (1 + maxClockDrift) - tickMs));
}

interface IndexWaiter {
    readonly term: Term;
    readonly deferred: Deferred<LogIndex>;
}

interface ReadWaiter {
    readonly deferred: Deferred<void>;
    index: LogIndex | undefined;
    /** For a ReadIndex round with lease reads on: when it was asked for, and in which term. */
    readonly askedAt?: number;
    readonly term?: Term;
}

export class RaftDriver {
    private readonly lifecycle = new Lifecycle('raft driver');
    private readonly core: RaftCoreApi;
    private readonly options: DriverOptions;
    private readonly logger: Logger;
    private readonly timers: TimerSet;
    private ticker: Timer | undefined;
    private scheduled: NodeJS.Immediate | undefined;
    private draining = false;
    private persistChain: Promise<void> = Promise.resolve();
    private applyChain: Promise<void> = Promise.resolve();
    private applied: LogIndex;
    private soft: SoftState;
    private nextRequestId = 1;
    /** Proposals and barriers waiting to be applied, by log index. */
    private readonly indexWaiters = new Map<LogIndex, IndexWaiter>();
    /** waitApplied() callers, in no particular order. */
    private appliedWaiters: { readonly index: LogIndex; readonly deferred: Deferred<void> }[] = [];
    private readonly readWaiters = new Map<number, ReadWaiter>();
    private readonly outcomeWaiters = new Map<number, Deferred<void>>();
    /** Lease reads: the term of the lease and the (clock) start of its newest confirmed round. */
    private lease: { term: Term; from: number } = { term: -1, from: -Infinity };
    /** A term in which this leader sent TimeoutNow: its followers may vote despite a lease. */
    private leaseBlockedTerm: Term = -1;
    private leaseRenewing = false;

    constructor(options: DriverOptions) {
        this.options = options;
        this.core = options.core;
        this.logger = options.logger ?? silentLogger;
        this.timers = new TimerSet(options.clock);
        this.applied = options.appliedIndex;
        this.soft = this.core.status().soft;
    }

    get appliedIndex(): LogIndex {
        return this.applied;
    }

    get softState(): SoftState {
        return this.soft;
    }

    get isLeader(): boolean {
        return this.soft.role === 'leader';
    }

    status(): Status {
        return this.core.status();
    }

    start(): void {
        this.lifecycle.moveTo('open');
        this.core.campaignIfSoleVoter();
        this.scheduleTick();
        this.kick();
    }

    private scheduleTick(): void {
        this.ticker = this.timers.setTimer(this.options.tickMs ?? 100, () => {
            if (!this.lifecycle.isOpen) return;
            this.core.tick();
            this.kick();
            this.scheduleTick();
        });
    }

    // ---- inputs -------------------------------------------------------------------------------

    /**
     * A message from a peer. Dropped after close. A message the core cannot accept (its checks of
     * raft's invariants: another leader in its own term, a committed entry contradicted) stops the
     * node with that reason: it is a bug or a peer that is not what it claims, and the core may have
     * begun to act on it. Before, the assertion escaped the socket's data handler: the process died.
     */
    receive(message: Message): void {
        if (!this.lifecycle.isOpen) return;
        try {
            this.core.step(message);
        } catch (error) {
            this.fail(error);
            return;
        }
        this.kick();
    }

    reportUnreachable(to: NodeId): void {
        if (!this.lifecycle.isOpen) return;
        this.core.reportUnreachable(to);
        this.kick();
    }

    /**
     * Proposes a command; resolves with its index once it is committed and applied here. A
     * refusal — nothing appended: not leader (NotLeaderError), a leadership transfer in progress
     * (BusyError), stopping (ClosedError) — throws here, synchronously, so the caller can tell
     * it from a later failure of the appended entry: NotLeaderError if another leader's entry
     * took its index (it never committed), IndeterminateError if its fate is still unknown
     * outcomeAfterStepDownMs after leadership was lost, or if a snapshot replaced it.
     */
    propose(data: Uint8Array): Promise<LogIndex> {
        if (!this.lifecycle.isOpen) throw new ClosedError('node is stopping');
        return this.waitForEntry(this.core.propose(data));
    }

    /**
     * Resolves once everything up to `index` is applied here; rejects with NotLeaderError if
     * this node stops leading first (entries it appended may then be replaced), ClosedError at
     * close.
     */
    waitApplied(index: LogIndex): Promise<void> {
        if (index <= this.applied) return Promise.resolve();
        if (!this.lifecycle.isOpen) return Promise.reject(new ClosedError('node is stopping'));
        const deferred = new Deferred<void>();
        this.appliedWaiters.push({ index, deferred });
        return deferred.promise;
    }

    /** Appends a barrier; resolves once it (and so everything before it) is applied here. */
    barrier(): Promise<LogIndex> {
        return this.appendAndWait(() => this.core.barrier());
    }

    private appendAndWait(append: () => { index: LogIndex; term: Term }): Promise<LogIndex> {
        if (!this.lifecycle.isOpen) return Promise.reject(new ClosedError('node is stopping'));
        let appended: { index: LogIndex; term: Term };
        try {
            appended = append();
        } catch (error) {
            return Promise.reject(error);
        }
        return this.waitForEntry(appended);
    }

    private waitForEntry(appended: { index: LogIndex; term: Term }): Promise<LogIndex> {
        const waiter: IndexWaiter = { term: appended.term, deferred: new Deferred<LogIndex>() };
        // A proposal of an earlier term still waiting at this index (failLeaderRequests): our
        // own new entry replaces its entry, so it never committed (definitely: "not leader").
        const earlier = this.indexWaiters.get(appended.index);
        assert(earlier === undefined || earlier.term < appended.term, 'two waiters for one index in one term');
        earlier?.deferred.reject(this.notLeader());
        this.indexWaiters.set(appended.index, waiter);
        this.kick();
        return waiter.deferred.promise;
    }

    /**
     * A linearizable read point (ReadIndex, dissertation §6.4): resolves once this node has
     * confirmed it is still leader and applied everything committed before the call.
     */
    readBarrier(): Promise<void> {
        if (!this.lifecycle.isOpen) return Promise.reject(new ClosedError('node is stopping'));
        if (!this.isLeader) return Promise.reject(this.notLeader());
        if (this.leaseHolds()) return this.leaseRead();
        return this.readRound();
    }

    private readRound(): Promise<void> {
        const requestId = this.nextRequestId++;
        const leaseMs = this.options.leaseReadMs ?? 0;
        const deferred = new Deferred<void>();
        const waiter: ReadWaiter = leaseMs > 0
            ? { deferred, index: undefined, askedAt: this.options.clock.now(), term: this.soft.term }
            : { deferred, index: undefined };
        this.readWaiters.set(requestId, waiter);
        try {
            this.core.readIndex(requestId);
        } catch (error) {
            this.readWaiters.delete(requestId);
            return Promise.reject(error);
        }
        this.kick();
        return waiter.deferred.promise;
    }

    /**
     * Lease reads. A quorum confirmed a round of this term that started at `lease.from`: each
     * of those followers received a message sent after that moment and, by stickiness
     * (core.ts: in lease), ignores every election for an election timeout after it — unless
     * this leader sent TimeoutNow in this term (then no lease) — so no other leader can exist
     * before `from + leaseReadMs` (leaseReadMsFor() keeps that true under bounded clock
     * drift). A read inside the lease therefore needs no round: its index is the commit index
     * now, as a confirmed round would have given. The check uses the monotonic clock at the
     * read's arrival, so a pause of this process before it only shortens the lease; a pause
     * after it is harmless, as it is after a ReadIndex round (the read's result can only miss
     * writes that began after the read did). Not safe under a VM frozen with its monotonic
     * clock stopped, nor with followers configured with a shorter election timeout.
     */
    private leaseHolds(): boolean {
        const leaseMs = this.options.leaseReadMs ?? 0;
        return leaseMs > 0 && this.lease.term === this.soft.term && this.leaseBlockedTerm !== this.soft.term
            && this.options.clock.now() - this.lease.from < leaseMs;
    }

    private leaseRead(): Promise<void> {
        // Past half the lease, a background round (whose result nobody waits for) extends it.
        const leaseMs = this.options.leaseReadMs ?? 0;
        if (!this.leaseRenewing && this.options.clock.now() - this.lease.from > leaseMs / 2) {
            this.leaseRenewing = true;
            this.readRound().catch(() => undefined).finally(() => {
                this.leaseRenewing = false;
            });
        }
        const index = this.core.status().commitIndex;
        if (index <= this.applied) return Promise.resolve();
        const waiter: ReadWaiter = { deferred: new Deferred<void>(), index };
        this.readWaiters.set(this.nextRequestId++, waiter);
        return waiter.deferred.promise;
    }

    private extendLease(waiter: ReadWaiter): void {
        if (waiter.askedAt === undefined || waiter.term !== this.soft.term || !this.isLeader) return;
        if (this.lease.term !== waiter.term) this.lease = { term: waiter.term, from: waiter.askedAt };
        else this.lease = { term: waiter.term, from: Math.max(this.lease.from, waiter.askedAt) };
    }

    changeMembership(change: MembershipChange): Promise<void> {
        return this.outcomeRequest((id) => this.core.changeMembership(id, change));
    }

    transferLeadership(target: NodeId): Promise<void> {
        return this.outcomeRequest((id) => this.core.transferLeadership(id, target));
    }

    private outcomeRequest(start: (requestId: number) => void): Promise<void> {
        if (!this.lifecycle.isOpen) return Promise.reject(new ClosedError('node is stopping'));
        const requestId = this.nextRequestId++;
        const deferred = new Deferred<void>();
        this.outcomeWaiters.set(requestId, deferred);
        try {
            start(requestId);
        } catch (error) {
            this.outcomeWaiters.delete(requestId);
            return Promise.reject(error);
        }
        this.kick();
        return deferred.promise;
    }

    notLeader(): NotLeaderError {
        const leader = this.soft.leader;
        const server = this.soft.configuration.servers.find((s) => s.id === leader);
        const hint = server === undefined ? undefined : { id: server.id, address: server.address };
        return new NotLeaderError('not leader', hint);
    }

    // ---- the pass -----------------------------------------------------------------------------

    /**
     * Schedules one processing pass, coalescing every input of this event-loop turn into it:
     * it runs in the check phase (setImmediate), after every callback of the poll phase, so
     * the peer messages and worker replies that arrived together (e.g. several locally
     * committed transactions, or the answers of both followers) become one Ready — one
     * append message per follower and one log write — instead of one each (batching).
     */
    kick(): void {
        if (this.scheduled !== undefined || !this.lifecycle.isOpen) return;
        this.scheduled = setImmediate(() => {
            this.scheduled = undefined;
            this.drain();
        });
    }

    private drain(): void {
        if (!this.lifecycle.isOpen || this.draining) return;
        this.draining = true;
        try {
            // Bounded: each Ready hands over what the core had; new work comes from new inputs.
            for (let i = 0; i < 64 && this.core.hasReady(); i++) this.handle(this.core.ready());
        } catch (error) {
            this.fail(error);
        } finally {
            this.draining = false;
        }
        if (this.lifecycle.isOpen && this.core.hasReady()) this.kick();
    }

    private handle(ready: Ready): void {
        if (ready.isEmpty) return;
        for (const message of ready.messages) {
            if (message.type === 'timeoutNow') this.leaseBlockedTerm = message.term;
            this.options.transport.send(message);
        }
        const durable = this.persist(ready);
        if (ready.softState !== undefined) this.onSoftState(ready.softState);
        this.apply(ready, durable);
        for (const state of ready.readStates) {
            const waiter = this.readWaiters.get(state.requestId);
            if (waiter === undefined) continue;
            waiter.index = state.index;
            this.extendLease(waiter);
        }
        this.releaseReads();
        for (const outcome of ready.outcomes) this.settleOutcome(outcome);
        for (const send of ready.snapshotsToSend) this.sendSnapshot(send.to, send.meta, send.message);
    }

    /** Starts persisting the Ready's writes; the promise settles when they are durable. */
    private persist(ready: Ready): Promise<void> {
        const hasWrite = ready.snapshot !== undefined || ready.hardState !== undefined
            || ready.truncateFrom !== undefined || ready.entries.length > 0;
        if (!hasWrite && ready.messagesAfterPersist.length === 0) return Promise.resolve();
        const write = {
            snapshot: ready.snapshot,
            hardState: ready.hardState,
            truncateFrom: ready.truncateFrom,
            entries: ready.entries,
        };
        // Issued now, not after the previous write finished: the log executes writes in call
        // order, and writes that queue up behind an fsync share the next one (group commit).
        const durable = hasWrite ? this.options.log.persist(write) : Promise.resolve();
        durable.catch(() => undefined); // observed below, in order; avoid an unhandled rejection
        this.persistChain = this.persistChain.then(async () => {
            await durable;
            if (!this.lifecycle.isOpen) return;
            if (ready.snapshot !== undefined) this.core.snapshotInstalled(ready.snapshot.index);
            if (ready.hardState !== undefined) this.core.hardStatePersisted(ready.hardState);
            if (ready.lastEntry !== undefined) this.core.persisted(ready.lastEntry);
            for (const message of ready.messagesAfterPersist) this.options.transport.send(message);
            this.kick();
        }).catch((error: unknown) => this.fail(error));
        return durable;
    }

    private apply(ready: Ready, durable: Promise<void>): void {
        const snapshot = ready.snapshot;
        const entries = ready.committedEntries;
        if (snapshot === undefined && entries.length === 0) return;
        this.applyChain = this.applyChain.then(async () => {
            if (snapshot !== undefined && snapshot.index > this.applied) {
                // The state machine installs the snapshot from the store: it must be there first.
                await durable;
                await this.options.stateMachine.installSnapshot(snapshot);
                this.applied = snapshot.index;
                this.settleIndexesUpTo(snapshot.index);
            }
            for (const entry of entries) {
                if (!this.lifecycle.isOpen) return;
                if (entry.index <= this.applied) continue;
                assert(entry.index === this.applied + 1, `apply gap: ${this.applied} → ${entry.index}`);
                if (entry.type === EntryType.command) await this.options.stateMachine.apply(entry);
                else await this.options.stateMachine.advance(entry.index);
                if (entry.type === EntryType.change) {
                    this.options.transport.setPeers(this.core.status().soft.configuration);
                }
                this.applied = entry.index;
                this.settleIndex(entry);
            }
            this.releaseReads();
            this.releaseAppliedWaiters();
            if (this.lifecycle.isOpen) this.options.onApplied?.(this.applied);
        }).catch((error: unknown) => this.fail(error));
    }

    /** Entries lo ≤ index < hi still in the core's log (for snapshot metadata). */
    entries(lo: LogIndex, hi: LogIndex): readonly Entry[] {
        return this.core.entries(lo, hi);
    }

    private settleIndex(entry: Entry): void {
        const waiter = this.indexWaiters.get(entry.index);
        if (waiter === undefined) return;
        this.indexWaiters.delete(entry.index);
        // Another term's entry at our index means ours was overwritten: it never committed, and
        // never will (a committed entry never changes) — a definite "not leader", safe to retry.
        if (waiter.term === entry.term) waiter.deferred.resolve(entry.index);
        else waiter.deferred.reject(this.notLeader());
    }

    private releaseAppliedWaiters(): void {
        if (this.appliedWaiters.length === 0) return;
        const still: typeof this.appliedWaiters = [];
        for (const w of this.appliedWaiters) {
            if (w.index <= this.applied) w.deferred.resolve();
            else still.push(w);
        }
        this.appliedWaiters = still;
    }

    private settleIndexesUpTo(index: LogIndex): void {
        for (const [at, waiter] of this.indexWaiters) {
            if (at > index) continue;
            this.indexWaiters.delete(at);
            waiter.deferred.reject(new IndeterminateError('leadership lost: replaced by a snapshot'));
        }
    }

    private releaseReads(): void {
        for (const [id, waiter] of this.readWaiters) {
            if (waiter.index === undefined || waiter.index > this.applied) continue;
            this.readWaiters.delete(id);
            waiter.deferred.resolve();
        }
    }

    private settleOutcome(outcome: Ready['outcomes'][number]): void {
        if (outcome.kind === 'read') {
            const waiter = this.readWaiters.get(outcome.requestId);
            this.readWaiters.delete(outcome.requestId);
            waiter?.deferred.reject(outcome.error);
            return;
        }
        const deferred = this.outcomeWaiters.get(outcome.requestId);
        if (deferred === undefined) return;
        this.outcomeWaiters.delete(outcome.requestId);
        if (outcome.ok) deferred.resolve();
        else deferred.reject(outcome.error ?? new UnavailableError(`${outcome.kind} failed`));
    }

    private onSoftState(soft: SoftState): void {
        const wasLeader = this.soft.role === 'leader';
        const configurationChanged = soft.configuration !== this.soft.configuration;
        // A new term, role or voter set: a lease must be earned again.
        this.lease = { term: -1, from: -Infinity };
        this.soft = soft;
        if (configurationChanged) this.options.transport.setPeers(soft.configuration);
        if (wasLeader && soft.role !== 'leader') this.failLeaderRequests();
        this.options.onSoftState?.(soft);
    }

    /**
     * Leadership lost: reads were never confirmed and fail. Appended proposals keep waiting for
     * their fate — settleIndex() resolves one whose entry is applied with its term and rejects
     * one whose index gets another term's entry — up to outcomeAfterStepDownMs, then fail with
     * IndeterminateError.
     */
    private failLeaderRequests(): void {
        for (const waiter of this.readWaiters.values()) waiter.deferred.reject(this.notLeader());
        this.readWaiters.clear();
        for (const w of this.appliedWaiters) w.deferred.reject(this.notLeader());
        this.appliedWaiters = [];
        const orphans = [...this.indexWaiters];
        if (orphans.length === 0) return;
        const giveUp = (): void => {
            for (const [index, waiter] of orphans) {
                if (this.indexWaiters.get(index) !== waiter) continue;
                this.indexWaiters.delete(index);
                waiter.deferred.reject(new IndeterminateError(`leadership lost: fate unknown after ${waitMs} ms`));
            }
        };
        const waitMs = this.options.outcomeAfterStepDownMs ?? 3000;
        if (waitMs <= 0) giveUp();
        else this.timers.setTimer(waitMs, giveUp);
    }

    /**
     * The transfer is the transport's: its close() aborts it and waits for it (before the snapshot
     * store closes), so the driver's close() does not wait for a transfer, which may run for
     * minutes; the outcome is reported to the core only while the driver is open.
     */
    private sendSnapshot(to: NodeId, meta: Ready['snapshotsToSend'][number]['meta'],
        message: Ready['snapshotsToSend'][number]['message']): void {
        void this.options.transport.sendSnapshot(to, meta, message)
            .catch(() => false)
            .then((ok) => {
                if (!this.lifecycle.isOpen) return;
                this.core.reportSnapshot(to, ok);
                this.kick();
            });
    }

    /** Compacts the core's log and the stored log up to a snapshot the state machine took. */
    compact(meta: Parameters<RaftCoreApi['compact']>[0], keepTrailing: number): Promise<void> {
        if (!this.lifecycle.isOpen) return Promise.resolve();
        const before = this.core.status().firstIndex;
        this.core.compact(meta, keepTrailing);
        const after = this.core.status().firstIndex;
        this.kick();
        if (after <= before) return Promise.resolve();
        const upTo = after - 1;
        this.persistChain = this.persistChain.then(() => this.options.log.compact(upTo))
            .catch((error: unknown) => this.fail(error));
        return this.persistChain;
    }

    // ---- failure and close --------------------------------------------------------------------

    /**
     * The node failed elsewhere (its SQLite worker, its disk): stop taking part in raft now — no
     * ticks, no heartbeats, no votes, inputs dropped — so the others elect a leader at once instead
     * of following a node that refuses every request until its owner closes it. Idempotent.
     */
    halt(error: unknown): void {
        this.fail(error);
    }

    private fail(error: unknown): void {
        if (!this.lifecycle.fail(error)) return;
        this.logger.error({ err: error }, 'raft driver failed');
        this.stopIntake();
        const reason = error instanceof TqliteError ? error : new UnavailableError('node failed', { cause: error });
        this.rejectAll(reason);
        this.options.onFailure?.(error);
    }

    private stopIntake(): void {
        if (this.scheduled !== undefined) clearImmediate(this.scheduled);
        this.scheduled = undefined;
        this.ticker?.cancel();
        this.timers.close();
    }

    private rejectAll(error: Error): void {
        for (const waiter of this.indexWaiters.values()) waiter.deferred.tryReject(error);
        this.indexWaiters.clear();
        for (const waiter of this.readWaiters.values()) waiter.deferred.tryReject(error);
        this.readWaiters.clear();
        for (const deferred of this.outcomeWaiters.values()) deferred.tryReject(error);
        this.outcomeWaiters.clear();
        for (const w of this.appliedWaiters) w.deferred.tryReject(error);
        this.appliedWaiters = [];
    }

    /**
     * Stops ticking and taking input, rejects what is pending with ClosedError, and waits for
     * the writes and applies already started (they are never abandoned half-way).
     */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.stopIntake();
            this.rejectAll(new ClosedError('node is stopping'));
            await this.persistChain.catch(() => undefined);
            await this.applyChain.catch(() => undefined);
        });
    }
}
