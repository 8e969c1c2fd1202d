// A tqlite node: the composition root of one server (DESIGN.md §2, docs/architecture.md). It
// owns the durable log, the SQLite worker, the raft core and its driver, and the peer
// transport, and it offers what the client gateway needs (the shape of src/server/backend.ts's
// Backend; src/index.ts puts the two together, since node/ must not import server/).
//
// Requests from clients: SQL sessions run in the worker. A write transaction that commits
// locally is captured by the worker and handed to propose(), which appends it to raft; the
// client's reply is held by the Fsm until the entry is committed and applied here. Writes run
// only once this leader applied the barrier it appended when it took office (so SQL never runs
// on a stale database); reads first confirm leadership with a ReadIndex round (linearizable).
//
// Snapshots (src/node/snapshots.ts): every thresholdEntries applied entries (more for a big
// database: thresholdSizeFraction) the state machine is snapshotted into the log's snapshot
// store and the log compacted behind it (never past the state machine's durable index);
// followers too far behind receive the snapshot in chunks.

import { randomInt } from 'node:crypto';
import { assert } from '../lib/assert.js';
import { systemClock, type Clock } from '../lib/clock.js';
import {
    AbortError, ConfigError, MembershipError, NotLeaderError, SqliteError, StorageError, TimeoutError, TqliteError,
    UnavailableError,
} from '../lib/errors.js';
import { errorCode, FsError, isNotFound, joinPath, parentPath, type FileSystem } from '../lib/fs.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { SeededRandom } from '../lib/random.js';
import { realFs } from '../lib/real-fs.js';
import { Fsm, type FsmSession } from '../fsm/fsm.js';
import type { CapturedWrite } from '../fsm/protocol.js';
import { LogStore } from '../log/index.js';
import { DEFAULT_PEER_LIMITS, PeerTransport } from '../peer/index.js';
import { parseAddress } from '../peer/address.js';
import { bootstrap } from '../raft/bootstrap.js';
import { RaftCore } from '../raft/core.js';
import type { SoftState } from '../raft/ready.js';
import type { Configuration, NodeId, Role } from '../raft/types.js';
import { DataDirLock } from './dir-lock.js';
import { DiskFullWatch } from './disk-full.js';
import { RaftDriver, leaseReadMsFor } from './driver.js';
import { generateId, readInfo, writeInfo } from './info.js';
import { LogStorePort } from './log-port.js';
import { writeNodeStore, type NodeInfo } from './node-store.js';
import type { StateMachinePort } from './ports.js';
import { NodeSqlSession } from './session.js';
import { SnapshotManager, type SnapshotOptions } from './snapshots.js';
import { PeerTransportPort } from './transport-port.js';

export interface NodeOptions {
    /** host:port this node listens on and is known by in the cluster (exactly as clients dial it). */
    readonly address: string;
    readonly dataDir: string;
    /** Only for a brand-new data directory: this node's id (default: bootstrap id or generated). */
    readonly id?: NodeId;
    /**
     * Addresses of existing members. A brand-new node with join addresses starts without a
     * configuration and waits to be added; without them it bootstraps a one-voter cluster.
     */
    readonly join?: readonly string[];
    readonly failureDomain?: bigint;
    readonly weight?: bigint;
    /** Milliseconds per raft tick (default 100). */
    readonly tickMs?: number;
    /**
     * Election timeout in ticks, randomized in [n, 2n) (default 8: 0.8–1.6 s with 100 ms ticks).
     * See NODE_TIMING_DEFAULTS for why 8 is safe.
     */
    readonly electionTimeoutTicks?: number;
    /** Heartbeat interval in ticks (default 1). */
    readonly heartbeatIntervalTicks?: number;
    /**
     * Lease reads (default off): a leader whose quorum confirmed it within the lease answers
     * reads without a ReadIndex round. Linearizable only while clocks drift less than 10% over
     * an election timeout and no process sees time jump (see leaseReadMsFor in driver.ts).
     */
    readonly leaseReads?: boolean;
    /** Seed for the randomized election timeouts (default: random). */
    readonly seed?: number;
    readonly busyTimeoutMs?: number;
    /**
     * When to snapshot the state machine and how much log to keep behind it, in entries and in
     * bytes (the raft log since the last snapshot is held in memory: these bound the node's
     * memory under large transactions). Defaults: SNAPSHOT_DEFAULTS in src/node/snapshots.ts.
     */
    readonly snapshot?: SnapshotOptions;
    readonly fs?: FileSystem;
    readonly clock?: Clock;
    readonly logger?: Logger;
    /**
     * go-dqlite's cluster TLS: raft connections to the other nodes are dialed over mutual TLS
     * with this certificate and key, verified against `ca` (createNode() also makes the
     * gateway require it). Default: plain TCP.
     */
    readonly tls?: ClusterTls;
    /**
     * Called once if the node fails (disk, worker) after it started: it has stopped serving and
     * must be closed. A failure during the start rejects the start instead.
     */
    readonly onFailure?: (error: unknown) => void;
    /**
     * Aborts a start in progress: open() then rejects with AbortError once everything it opened
     * is closed again. A step already running (a disk read or write, the worker's recovery) is
     * finished first: nothing is released while an operation on it is pending. No effect once
     * open() resolved.
     */
    readonly signal?: AbortSignal;
    /**
     * Test hooks: faults and bounds of the SQLite worker that tests must be able to provoke.
     * Not for production use; they may change without notice. See NodeTestHooks.
     */
    readonly testing?: NodeTestHooks;
}

/** Test-only options of a node (NodeOptions.testing), passed through to its parts. */
export interface NodeTestHooks {
    /**
     * The SQLite worker exits abruptly (exit code 70, as a killed process would) when it reaches
     * this named point: FsmOptions.crashPoint (the points are in src/fsm/engine.ts and
     * database.ts, e.g. 'install-before-switch', 'checkpoint-after').
     */
    readonly fsmCrashPoint?: string;
    /**
     * How long Fsm.close() waits for each of its steps (in-flight requests, the shutdown reply,
     * the worker's exit, its termination) before going on: FsmOptions.closeDeadlineMs
     * (default 5000 ms).
     */
    readonly fsmCloseDeadlineMs?: number;
    /**
     * Free bytes of the databases' file system (`<dataDir>/db`), as the disk-full check sees them
     * (DiskFullHost.freeBytes; default statfs). Return 0 to make an SQLITE_FULL look like a
     * full disk.
     */
    readonly freeBytes?: (dbDir: string) => Promise<number>;
    /**
     * The largest entry a write transaction may produce (FsmOptions.maxEntryBytes); default
     * maxEntryBytesFor(the peer transport's frameBytesMax). Lower it to test the refusal.
     */
    readonly maxEntryBytes?: number;
}

/**
 * The largest entry a transaction may produce so that an AppendEntries carrying it alone still
 * fits in one peer frame: the frame limit less room for the frame and message headers.
 */
export function maxEntryBytesFor(frameBytesMax: number): number {
    return frameBytesMax - 64 * 1024;
}

/** The cluster certificate, its key and the CA that verifies it (PEM), as go-dqlite's app.WithTLS takes them. */
export interface ClusterTls {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
    readonly ca: string | Buffer;
}

/** A failure to create or read the data directory, as a StorageError (typed errors pass). */
function dataDirError(dataDir: string, error: unknown): unknown {
    if (error instanceof TqliteError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new StorageError(`data directory ${dataDir}: ${reason}`, 'ERR_STORAGE', { cause: error });
}

/**
 * Creates the directory `path` and its missing parents through `fs` (mkdir -p), each new one
 * made durable in its parent. A file in the way fails with ENOTDIR.
 */
async function makeDirectories(fs: FileSystem, path: string): Promise<void> {
    try {
        if ((await fs.stat(path)).isDirectory) return;
        throw new FsError('ENOTDIR', 'mkdir', path);
    } catch (error) {
        if (!isNotFound(error)) throw error;
    }
    const parent = parentPath(path);
    if (parent !== path) await makeDirectories(fs, parent);
    try {
        await fs.mkdir(path);
    } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error; // made meanwhile by someone else
    }
    await fs.fsyncDir(parent);
}

/**
 * Raft timing of a node. Failover time is mostly the survivors' election timeout (the first
 * of them to time out, a draw in [n, 2n) ticks), so n sets it: 10 ticks gave a median leader
 * failover of ~1.4 s to a new leader and ~1.6 s to a client's write (bench/compare.ts). 8 ticks
 * (0.8–1.6 s) is still 8 heartbeats, and it is safe on a loaded machine for two reasons: ticks
 * are counted per timer callback, so a node whose event loop stalls does not accumulate ticks
 * (a stalled follower never times out because of its own stall, only a leader that sends
 * nothing for 0.8 s is replaced); and pre-vote with check-quorum means a follower that does
 * time out while the leader is alive cannot win (the others still hear the leader) and does
 * not disturb the term. etcd's defaults are 100 ms heartbeats and a 1 s election timeout;
 * dqlite's 500 ms / 3 s.
 */
export const NODE_TIMING_DEFAULTS = {
    tickMs: 100,
    electionTimeoutTicks: 8,
    heartbeatIntervalTicks: 1,
    /** A catch-up round before a promotion to voter may take 1 s (as before the timeout was 8). */
    catchUpRoundTicksMax: 10,
} as const;

export interface NodeStatus {
    readonly id: NodeId;
    readonly address: string;
    readonly role: SoftState['role'];
    readonly term: number;
    readonly leader: NodeId;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly lastIndex: number;
    readonly configuration: Configuration;
}

/** Throws AbortError when `signal` is aborted. */
function throwIfAborted(signal: AbortSignal | undefined, step: string): void {
    if (signal?.aborted === true) throw new AbortError(`node start aborted ${step}`, { cause: signal.reason });
}

/** The longest address a peer may give in its CONNECT (host names are at most 253 bytes). */
const PEER_ADDRESS_MAX = 512;

export class Node {
    readonly id: NodeId;
    readonly address: string;
    private readonly lifecycle = new Lifecycle('node');
    private readonly logger: Logger;
    private readonly options: NodeOptions;
    private readonly fs: FileSystem;
    private store: LogStore | undefined;
    private fsm!: Fsm;
    private transport!: PeerTransport;
    private transportPort!: PeerTransportPort;
    private snapshots: SnapshotManager | undefined;
    private driver!: RaftDriver;
    private weight: bigint;
    private readonly failureDomain: bigint;
    private leaderReady: Promise<boolean> | undefined;
    private readonly sessions = new Set<NodeSqlSession>();
    private nodeStoreChain: Promise<void> = Promise.resolve();
    private readonly diskFull: DiskFullWatch;

    private constructor(options: NodeOptions, id: NodeId, private readonly dirLock: DataDirLock) {
        this.options = options;
        this.id = id;
        this.address = options.address;
        this.fs = options.fs ?? realFs;
        this.logger = (options.logger ?? silentLogger).child({ node: String(id) });
        this.weight = options.weight ?? 0n;
        this.failureDomain = options.failureDomain ?? 0n;
        this.diskFull = new DiskFullWatch({
            id,
            dbDir: joinPath(options.dataDir, 'db'),
            clock: options.clock ?? systemClock,
            logger: this.logger,
            freeBytes: options.testing?.freeBytes,
            isLeader: () => this.lifecycle.isOpen && this.driver.isLeader,
            members: () => this.driver.status().soft.configuration.servers,
            contacted: () => this.recentlyContacted(),
            transfer: (target) => this.transfer(target),
        });
    }

    /** Opens (or creates) the node in `options.dataDir` and starts it. */
    static async open(options: NodeOptions): Promise<Node> {
        const fs = options.fs ?? realFs;
        // Checked before anything is opened: the gateway cannot listen on it, nor peers dial it.
        if (parseAddress(options.address) === undefined) {
            throw new ConfigError(`address "${options.address}" must be host:port, [host]:port or @name`);
        }
        throwIfAborted(options.signal, 'before it began');
        const joining = (options.join ?? []).length > 0;
        let info: NodeInfo | undefined;
        let lock: DataDirLock | undefined;
        try {
            await makeDirectories(fs, options.dataDir);
            // One node per directory: a second one is refused before it touches anything.
            lock = await DataDirLock.acquire(fs, options.dataDir);
            info = await readInfo(fs, options.dataDir);
            if (info === undefined) {
                const id = options.id ?? generateId(options.address, process.hrtime.bigint());
                info = { id, address: options.address, role: joining ? 'spare' : 'voter' };
                await writeInfo(fs, options.dataDir, info);
            } else if (info.address !== options.address) {
                // As go-dqlite's app: the directory belongs to the node at info.address. Started
                // at another address it would be a second node with the same id (a copied data
                // directory), able to vote twice in one term alongside the original.
                throw new ConfigError(`address "${info.address}" in info.yaml does not match "${options.address}"`
                    + ': this data directory belongs to another node (a copy of its directory?)');
            }
            throwIfAborted(options.signal, 'before the log was opened');
        } catch (error) {
            await lock?.release();
            throw dataDirError(options.dataDir, error);
        }
        const node = new Node(options, info.id, lock as DataDirLock);
        try {
            await node.start(joining);
        } catch (error) {
            // A part that failed meanwhile (the worker died) is the cause: the step that saw it
            // only got the ClosedError of a request the failure rejected.
            const cause = node.lifecycle.state === 'failed' ? node.lifecycle.error : error;
            await node.close();
            throw cause;
        }
        return node;
    }

    /**
     * Between two steps of start(): throws when the start was aborted, or when the worker
     * failed meanwhile (fail() recorded it; nothing may move the node to open after that).
     */
    private checkStarting(step: string): void {
        throwIfAborted(this.options.signal, step);
        if (this.lifecycle.state === 'failed') throw this.lifecycle.error;
    }

    /**
     * The worker's start, or AbortError as soon as the start is aborted: a worker whose recovery
     * hangs (a disk that does not answer) is then left to Fsm.close(), which bounds its wait
     * and terminates the worker.
     */
    private untilAborted<T>(promise: Promise<T>, step: string): Promise<T> {
        const signal = this.options.signal;
        if (signal === undefined) return promise;
        return new Promise<T>((resolve, reject) => {
            const onAbort = (): void => reject(new AbortError(`node start aborted ${step}`, { cause: signal.reason }));
            if (signal.aborted) {
                onAbort();
                return;
            }
            signal.addEventListener('abort', onAbort, { once: true });
            promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
        });
    }

    private async start(joining: boolean): Promise<void> {
        this.lifecycle.moveTo('opening');
        const clock = this.options.clock ?? systemClock;
        // The SQLite worker starts (≈1 s under load) while the log opens: they share nothing, and
        // the Fsm's durable index is awaited below, before anything uses it. On a failure of either,
        // both are settled before throwing, so close() finds each one opened or not, never half-way.
        const fsm = new Fsm({
            dir: joinPath(this.options.dataDir, 'db'),
            propose: (write) => this.proposeCaptured(write),
            onAbandon: () => this.holdWritesAfterAbandon(),
            busyTimeoutMs: this.options.busyTimeoutMs,
            clock,
            logger: this.logger,
            onFailure: (error) => this.fail(error),
            crashPoint: this.options.testing?.fsmCrashPoint,
            closeDeadlineMs: this.options.testing?.fsmCloseDeadlineMs,
            maxEntryBytes: this.options.testing?.maxEntryBytes ?? maxEntryBytesFor(DEFAULT_PEER_LIMITS.frameBytesMax),
        });
        this.fsm = fsm;
        const fsmStarted = fsm.start();
        fsmStarted.catch(() => undefined); // awaited below, or settled before a log failure is thrown
        let store: LogStore;
        let state: Awaited<ReturnType<typeof LogStore.open>>['state'];
        try {
            const opened = await LogStore.open({ fs: this.fs, dir: joinPath(this.options.dataDir, 'raft'),
                logger: this.logger });
            store = opened.store;
            this.store = store;
            state = opened.state;
            this.checkStarting('after the log was opened');
            // A bootstrap cut short between its two writes left term 1, no vote and no entry: still
            // fresh (a cluster that elected anyone is past term 1, so a joiner never has that state).
            const { term, vote } = state.hardState;
            const fresh = state.entries.length === 0 && state.snapshot === undefined
                && (term === 0 || (term === 1 && vote === 0n));
            if (fresh && !joining) {
                // No abort check between these two writes: a term without its entry would make a
                // node that never bootstraps again.
                const boot = bootstrap({ servers: [{ id: this.id, address: this.address, role: 'voter' }] });
                await store.setHardState(boot.hardState);
                await store.append(boot.entries);
                state = { hardState: boot.hardState, snapshot: undefined, entries: [...boot.entries] };
                this.logger.info({ address: this.address }, 'bootstrapped a new cluster');
            }
        } catch (error) {
            // close() should not meet a worker half-started, unless the start was aborted.
            await this.untilAborted(fsmStarted, 'while the state machine started').catch(() => undefined);
            throw error;
        }
        const started = await this.untilAborted(fsmStarted, 'while the state machine started');
        this.checkStarting('after the state machine started');
        const durableIndex = await SnapshotManager.restore(fsm, store, started.durableIndex, this.logger);
        this.checkStarting('after the snapshot was restored');
        const snapshots = new SnapshotManager(fsm, store, () => this.driver, this.options.snapshot, this.logger);
        this.snapshots = snapshots;
        const core = new RaftCore({
            id: this.id,
            random: new SeededRandom(this.options.seed ?? randomInt(2 ** 31)),
            electionTimeoutTicks: this.options.electionTimeoutTicks ?? NODE_TIMING_DEFAULTS.electionTimeoutTicks,
            heartbeatIntervalTicks: this.options.heartbeatIntervalTicks ?? NODE_TIMING_DEFAULTS.heartbeatIntervalTicks,
            catchUpRoundTicksMax: Math.max(NODE_TIMING_DEFAULTS.catchUpRoundTicksMax,
                this.options.electionTimeoutTicks ?? NODE_TIMING_DEFAULTS.electionTimeoutTicks),
            logger: this.logger,
        }, {
            hardState: state.hardState, snapshot: state.snapshot, entries: state.entries, appliedIndex: durableIndex,
        });
        this.transport = new PeerTransport({
            id: this.id,
            address: this.address,
            clock,
            logger: this.logger,
            onMessage: (message) => this.driver.receive(message),
            onUnreachable: (id) => this.driver.reportUnreachable(id),
            onSnapshot: (offer) => snapshots.sink(offer),
            tls: this.options.tls === undefined ? undefined
                : { cert: this.options.tls.cert, key: this.options.tls.key, ca: this.options.tls.ca },
        });
        const stateMachine: StateMachinePort = {
            apply: (entry) => this.fsm.apply(entry.index, entry.data),
            advance: (index) => this.fsm.advance(index),
            installSnapshot: (meta) => snapshots.installIntoFsm(meta),
        };
        this.transportPort = new PeerTransportPort(this.transport, (meta) => snapshots.source(meta));
        this.driver = new RaftDriver({
            core,
            log: new LogStorePort(store, (meta) => snapshots.commitStaged(meta)),
            transport: this.transportPort,
            stateMachine,
            clock,
            tickMs: this.options.tickMs ?? NODE_TIMING_DEFAULTS.tickMs,
            leaseReadMs: this.options.leaseReads === true
                ? leaseReadMsFor(this.options.tickMs ?? NODE_TIMING_DEFAULTS.tickMs,
                    this.options.electionTimeoutTicks ?? NODE_TIMING_DEFAULTS.electionTimeoutTicks)
                : 0,
            appliedIndex: durableIndex,
            logger: this.logger,
            onFailure: (error) => this.fail(error),
            onSoftState: (soft) => this.onSoftState(soft),
            onApplied: (index) => snapshots.maybeTake(index),
        });
        this.transportPort.setPeers(this.driver.softState.configuration);
        this.lifecycle.moveTo('open');
        this.driver.start();
        this.saveNodeStore(this.driver.softState.configuration);
    }

    // ---- raft events --------------------------------------------------------------------------

    /**
     * A write transaction committed locally: append it to raft, in commit order. Returns the
     * proposal's outcome (the Fsm answers a writer with it if the transaction is undone). A
     * refusal (not leader, a transfer in progress) throws: the Fsm then abandons every pending
     * transaction (FsmOptions.propose) and calls holdWritesAfterAbandon(). After the append the
     * outcome is decided by raft: apply(), or leadershipLost() when this node stops leading.
     */
    private proposeCaptured(write: CapturedWrite): Promise<unknown> {
        return this.driver.propose(write.entry);
    }

    /**
     * Pending transactions are being undone while this node may still lead: entries it already
     * appended may still commit, and their pages come back only when they are applied. Until
     * then new writes would run on pages that miss them, so writes (and reads) wait until
     * everything appended so far is applied.
     */
    private holdWritesAfterAbandon(): void {
        if (!this.driver.isLeader) return;
        const last = this.driver.status().lastIndex;
        const applied = this.driver.waitApplied(last).then(() => true, () => false);
        // On top of any hold already in place (a leadership transfer's, or an earlier abandon's):
        // replacing it would let SQL run during the transfer again (each write then refused).
        const before = this.leaderReady;
        this.leaderReady = before === undefined ? applied
            : Promise.all([before, applied]).then(([a, b]) => a && b);
    }

    private onSoftState(soft: SoftState): void {
        if (soft.role === 'leader' && this.leaderReady === undefined) {
            // The barrier of this term: once applied, every entry committed before is applied.
            this.leaderReady = this.driver.barrier().then(() => true, () => false);
            this.logger.info({ term: soft.term }, 'became leader');
        }
        if (soft.role !== 'leader' && this.leaderReady !== undefined) {
            this.leaderReady = undefined;
            this.logger.info({ term: soft.term, leader: String(soft.leader) }, 'lost leadership');
            if (this.fsm.isOpen) void this.fsm.leadershipLost().catch(() => undefined);
        }
        this.saveNodeStore(soft.configuration);
    }

    private saveNodeStore(configuration: Configuration): void {
        const nodes: NodeInfo[] = configuration.servers.map((s) => ({ id: s.id, address: s.address, role: s.role }));
        if (nodes.length === 0) return;
        const path = joinPath(this.options.dataDir, 'cluster.yaml');
        this.nodeStoreChain = this.nodeStoreChain
            .then(() => writeNodeStore(this.fs, path, nodes))
            .catch((error: unknown) => this.logger.warn({ err: error }, 'cannot write cluster.yaml'));
    }

    private fail(error: unknown): void {
        const starting = this.lifecycle.state === 'opening';
        if (!this.lifecycle.fail(error)) return;
        this.logger.error({ err: error }, starting ? 'node failed while starting' : 'node failed: it stops serving');
        // During the start the failure rejects open() (checkStarting), which closes the node.
        if (starting) return;
        this.driver?.halt(error); // (a no-op when the driver's failure brought us here)
        this.options.onFailure?.(error);
    }

    // ---- what the gateway needs (src/server/backend.ts) ----------------------------------------

    requireLeader(): void {
        this.lifecycle.assertOpen();
        if (!this.driver.isLeader) throw this.driver.notLeader();
    }

    /** Resolves once this leader may run SQL (its term's barrier is applied). */
    async waitLeaderReady(): Promise<void> {
        this.requireLeader();
        const ready = this.leaderReady;
        if (ready === undefined || !(await ready)) throw this.driver.notLeader();
        this.requireLeader();
    }

    /** A linearizable read point: leadership confirmed by a quorum, everything before applied. */
    async readBarrier(): Promise<void> {
        await this.waitLeaderReady();
        await this.driver.readBarrier();
    }

    async leader(): Promise<{ leader: { id: NodeId; address: string } | undefined; isVoter: boolean }> {
        const soft = this.driver.softState;
        const servers = soft.configuration.servers;
        const isVoter = servers.some((s) => s.id === this.id && s.role === 'voter');
        // A failed node knows no leader (its raft state stopped when it failed): never itself.
        const leader = this.lifecycle.state === 'failed' ? undefined : servers.find((s) => s.id === soft.leader);
        return { leader: leader === undefined ? undefined : { id: leader.id, address: leader.address }, isVoter };
    }

    async cluster(): Promise<readonly { id: NodeId; address: string; role: Role }[]> {
        return this.driver.softState.configuration.servers.map((s) => ({ id: s.id, address: s.address, role: s.role }));
    }

    async describe(): Promise<{ failureDomain: bigint; weight: bigint }> {
        return { failureDomain: this.failureDomain, weight: this.weight };
    }

    async setWeight(weight: bigint): Promise<void> {
        this.weight = weight;
    }

    async add(id: NodeId, address: string): Promise<void> {
        this.requireLeader();
        if (id === 0n) throw new MembershipError('server ID is not valid');
        await this.driver.changeMembership({ kind: 'add', id, address });
    }

    async assign(id: NodeId, role: Role): Promise<void> {
        this.requireLeader();
        await this.driver.changeMembership({ kind: 'assign', id, role });
    }

    async remove(id: NodeId): Promise<void> {
        this.requireLeader();
        await this.driver.changeMembership({ kind: 'remove', id });
    }

    async transfer(id: NodeId): Promise<void> {
        this.requireLeader();
        const transferring = this.driver.transferLeadership(id);
        // SQL waits while leadership moves: the raft core refuses proposals during a transfer,
        // and a write SQLite already committed locally would then have to be abandoned (undone
        // with everything pending: FsmOptions.propose). Once leadership moved, the waiters fail
        // "not leader" and clients go to the new leader; if it did not move, they go on here.
        const before = this.leaderReady;
        this.leaderReady = transferring.then(() => false, async () => (before === undefined ? false : before));
        try {
            await transferring;
        } catch (error) {
            // The core gave up after an election timeout (wire-protocol.md: TRANSFER fails with
            // FAILURE(1, "leadership transfer failed") when this node is still leader). Not "not
            // leader": a client would retry the transfer here, against the same leader, again.
            if (error instanceof TimeoutError && this.driver.isLeader) {
                throw new MembershipError('leadership transfer failed');
            }
            throw error;
        }
    }

    async dump(name: string): Promise<readonly { name: string; data: Uint8Array }[]> {
        this.lifecycle.assertOpen();
        const { databases } = await this.fsm.inspect();
        if (!databases.some((d) => d.database === name)) throw new SqliteError(1002, 'database does not exist');
        // The committed pages as one consolidated image, and an empty WAL (as dqlite HEAD does).
        const image = await this.fsm.dump(name);
        return [{ name, data: image }, { name: `${name}-wal`, data: new Uint8Array(0) }];
    }

    connect(handoff: { id: NodeId; address: string; socket: import('node:net').Socket; head: Uint8Array }): boolean {
        if (!this.lifecycle.isOpen || handoff.address.length > PEER_ADDRESS_MAX) return false;
        const info = { id: handoff.id, address: handoff.address, leftover: handoff.head };
        // Learned only once accepted: a refused CONNECT leaves nothing behind.
        if (!this.transport.accept(handoff.socket, info)) return false;
        this.transportPort.learn(handoff.id, handoff.address);
        return true;
    }

    /** A session's SQL failed: on a leader, SQLITE_FULL may mean a full disk (disk-full.ts). */
    statementFailed(error: unknown): void {
        if (this.lifecycle.isOpen) this.diskFull.report(error);
    }

    async open(name: string): Promise<NodeSqlSession> {
        this.requireLeader();
        let inner: FsmSession;
        try {
            inner = await this.fsm.open(name) as FsmSession;
        } catch (error) {
            this.statementFailed(error); // a full disk refuses the database's -shm file (I/O error)
            throw error;
        }
        const session = new NodeSqlSession(this, inner, () => {
            this.sessions.delete(session);
        });
        this.sessions.add(session);
        return session;
    }

    // ---- status and close ---------------------------------------------------------------------

    status(): NodeStatus {
        const status = this.driver.status();
        return {
            id: this.id,
            address: this.address,
            role: status.soft.role,
            term: status.hardState.term,
            leader: status.soft.leader,
            commitIndex: status.commitIndex,
            appliedIndex: this.driver.appliedIndex,
            lastIndex: status.lastIndex,
            configuration: status.soft.configuration,
        };
    }

    /**
     * Leader only: the members the leader heard from within an election timeout (itself
     * included), each with the index up to which its log is known to match the leader's (its
     * own: the last index). Spares receive no traffic, so they never count as online here.
     */
    recentlyContacted(): Map<NodeId, number> {
        const status = this.driver.status();
        const online = new Map<NodeId, number>([[this.id, status.lastIndex]]);
        if (status.soft.role !== 'leader') return online;
        const limit = this.options.electionTimeoutTicks ?? NODE_TIMING_DEFAULTS.electionTimeoutTicks;
        for (const p of status.progress) if (p.lastContactTicks < limit) online.set(p.id, p.match);
        return online;
    }

    /** Digests of every database (tests compare nodes with it). */
    inspect(): ReturnType<Fsm['inspect']> {
        return this.fsm.inspect();
    }

    get state(): string {
        return this.lifecycle.state;
    }

    /**
     * Stops the node: sessions, then the driver (pending requests rejected, started writes
     * finished), the peer transport, the SQLite worker, the log. Idempotent. Handover (giving
     * the role and leadership away first) is the caller's job: see src/index.ts.
     */
    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.diskFull.stop();
            try {
                await Promise.allSettled([...this.sessions].map((s) => s.close()));
                if (this.driver !== undefined) await this.driver.close();
                await this.diskFull.close(); // after the driver's, which rejects a transfer in flight
                if (this.transport !== undefined) await this.transport.close();
                await this.snapshots?.close();
                if (this.fsm !== undefined) await this.fsm.close();
                await this.nodeStoreChain;
                await this.store?.close();
            } finally {
                // Last, and even if a close above threw: the directory must not stay held.
                await this.dirLock.release();
            }
            assert(this.sessions.size === 0, 'a session outlived the node');
        });
    }
}
