// The simulated disk of one node: the real durable log (src/log's LogStore, through the same
// LogStorePort the production driver uses) on the node's own simulated file system (SimFs).
//
// Time. Writes reach SimFs's page cache at once; every sync (fdatasync, fsync, fsyncDir) takes
// a simulated latency: it completes in a later event of the agenda, and only then does SimFs
// make the data durable. In seeds with durableWrites the SimFs offers O_DSYNC writes, so the
// store writes each batch with one writeDurable: its data reaches the page cache at once and
// becomes durable after one such latency. The store's group-commit turn is one event of the agenda too. So a
// run stays a pure function of the seed, and appends that arrive while a sync is in flight
// share the next one, as on a real disk.
//
// Crashes. A crash cuts the power of the node's SimFs: unsynced writes are dropped, kept, torn
// at sector granularity or reordered (the crash plan, drawn from the seed), and the next start
// loads the log with the real LogStore.open from what survived. Nothing of the old incarnation
// runs after the cut: its pending syncs never complete and its store is abandoned.
//
// The model. Beside the real store, the disk keeps what the store acknowledged as durable
// (`hardState`, `snapshot`, `log`): the checkers use it ("an acknowledgement promises that what
// it acknowledges is durable"), and every load is checked against it: a crash may keep more
// than was acknowledged, never less (no acknowledged entry lost, term and vote never older than
// the last acknowledged ones, snapshots never older).

import { StorageError } from '../../src/lib/errors.js';
import type { FileStat, FileSystem, FsFile, OpenMode } from '../../src/lib/fs.js';
import { SimFs } from '../../src/lib/sim-fs.js';
import type { CrashPlan, SimWriteDurable } from '../../src/lib/sim-fs.js';
import { LogStore } from '../../src/log/index.js';
import type { LoadedLog } from '../../src/log/index.js';
import { LogStorePort } from '../../src/node/log-port.js';
import type { Message } from '../../src/raft/messages.js';
import type { Entry, HardState, LogIndex, SnapshotMeta, Term } from '../../src/raft/types.js';
import { SimFailure } from './failure.js';
import { LogView } from './log-view.js';
import type { SmSnapshot } from './state-machine.js';

export interface StoredSnapshot {
    readonly meta: SnapshotMeta;
    readonly data: SmSnapshot;
}

/** A message released once its write is durable, with what it promises about the disk. */
export interface AfterPersistMessage {
    readonly message: Message;
    /** For a successful AppendEntries response: the prefix hash its index must have on disk. */
    readonly expectedPrefix: number | undefined;
}

/** One Ready's writes (or a local snapshot), from issue until the store acknowledged them. */
export interface PendingWrite {
    /** A snapshot received from the leader, to install (resets the log). */
    readonly install: StoredSnapshot | undefined;
    readonly hardState: HardState | undefined;
    readonly truncateFrom: LogIndex | undefined;
    readonly entries: readonly Entry[];
    readonly lastEntry: { readonly index: LogIndex; readonly term: Term } | undefined;
    readonly after: readonly AfterPersistMessage[];
    /** A snapshot this node's state machine took, to store before compacting the log. */
    readonly take: { readonly snapshot: StoredSnapshot; readonly keepTrailing: number } | undefined;
}

/** What the simulation gives a disk: virtual time and the seed's randomness. */
export interface DiskHost {
    /** A promise resolved by an agenda event after one simulated sync latency (never, if `alive()` turns false). */
    syncLatency(nodeId: number, alive: () => boolean): Promise<void>;
    /** A promise resolved by an agenda event at the current time (one "event-loop turn"). */
    turn(nodeId: number, alive: () => boolean): Promise<void>;
    /** Called when the store fails (an I/O error): the node must stop. */
    onStorageFailure(nodeId: number, error: StorageError): void;
    /** Marks that promise chains were started (the simulation settles microtasks after the event). */
    noteAsync(): void;
}

const RAFT_DIR = '/raft';

/** One incarnation's view of the disk: dies with a crash. */
interface Epoch {
    alive: boolean;
    /** Syncs complete at once (while loading and bootstrapping: recovery takes no simulated time). */
    fast: boolean;
}

export class SimDisk {
    // ---- the acknowledged model ----
    hardState: HardState = { term: 0, vote: 0n };
    snapshot: StoredSnapshot | undefined = undefined;
    readonly log = new LogView({ keepEntries: true });
    /** Writes issued to the store and not yet acknowledged (in issue order). */
    inFlight: PendingWrite[] = [];

    // ---- the real thing ----
    /** The node's file system; replaced by the survivor image at each crash. */
    fs: SimFs;
    store: LogStore | undefined = undefined;
    private port: LogStorePort | undefined = undefined;
    private epoch: Epoch = { alive: false, fast: true };
    /** Snapshot data received from the leader, by index, until the port commits it. */
    private readonly installing = new Map<number, SmSnapshot>();
    private readonly nodeId: number;
    private readonly host: DiskHost;
    private readonly segmentBytes: number;

    /** `durableWrites`: the SimFs offers O_DSYNC writes (the log's RealFs path). */
    constructor(nodeId: number, host: DiskHost, segmentBytes: number, durableWrites = false) {
        this.nodeId = nodeId;
        this.host = host;
        this.segmentBytes = segmentBytes;
        this.fs = new SimFs({ durableWrites });
    }

    private fail(message: string): never {
        throw new SimFailure('safety', `node ${this.nodeId} disk: ${message}`);
    }

    /** True if the acknowledged state holds index `index` with the given prefix hash (or a snapshot past it). */
    holds(index: LogIndex, prefix: number | undefined): boolean {
        if (this.snapshot !== undefined && this.snapshot.meta.index >= index) return true;
        const durable = this.log.prefixAt(index);
        return durable !== undefined && (prefix === undefined || durable === prefix);
    }

    // ---- lifecycle ------------------------------------------------------------------------------

    private async openStore(epoch: Epoch): Promise<{ store: LogStore; state: LoadedLog }> {
        const host = this.host;
        const nodeId = this.nodeId;
        const alive = (): boolean => epoch.alive;
        const latency = (): Promise<void> | undefined => {
            if (!epoch.alive) return new Promise<void>(() => undefined);
            if (epoch.fast) return undefined;
            return host.syncLatency(nodeId, alive);
        };
        const fs = new LatencyFs(this.fs, latency);
        return LogStore.open({
            fs,
            dir: RAFT_DIR,
            segmentBytes: this.segmentBytes,
            yieldTurn: () => {
                if (!epoch.alive) return new Promise<void>(() => undefined);
                return epoch.fast ? Promise.resolve() : host.turn(nodeId, alive);
            },
            onFailure: (error) => {
                if (epoch.alive) host.onStorageFailure(nodeId, error);
            },
        });
    }

    /** Writes a brand-new cluster's bootstrap state to the empty disk (durably), before the first start. */
    async bootstrap(hardState: HardState, entries: readonly Entry[]): Promise<void> {
        const epoch: Epoch = { alive: true, fast: true };
        const { store } = await this.openStore(epoch);
        await store.setHardState(hardState);
        if (entries.length > 0) await store.append(entries);
        await store.close();
        epoch.alive = false;
        this.hardState = hardState;
        for (const entry of entries) this.log.append(entry);
    }

    /**
     * Loads the log from what the file system holds (LogStore.open, the production recovery
     * code), checks it against the acknowledged model, and makes the loaded state the model.
     */
    async load(): Promise<{ hardState: HardState; snapshot: StoredSnapshot | undefined; entries: Entry[] }> {
        const epoch: Epoch = { alive: true, fast: true };
        this.epoch = epoch;
        const { store, state } = await this.openStore(epoch);
        let snapshot: StoredSnapshot | undefined;
        if (state.snapshot !== undefined) {
            const reader = await store.snapshots.open(state.snapshot.index);
            const chunks: Uint8Array[] = [];
            try {
                for (let chunk = await reader.read(); chunk !== undefined; chunk = await reader.read()) {
                    chunks.push(chunk);
                }
            } finally {
                await reader.close();
            }
            snapshot = { meta: reader.meta, data: decodeSmSnapshot(reader.meta, Buffer.concat(chunks)) };
        }
        if (!epoch.alive) throw new Error('disk crashed while loading');
        this.checkLoaded(state.hardState, snapshot, state.entries);
        this.store = store;
        this.port = new LogStorePort(store, (meta) => this.commitInstalled(meta));
        this.inFlight = [];
        this.installing.clear();
        this.hardState = state.hardState;
        this.snapshot = snapshot;
        if (snapshot === undefined) this.log.reset(0, 0, 0);
        else this.log.reset(snapshot.meta.index, snapshot.meta.term, snapshot.data.stateHash);
        for (const entry of state.entries) this.log.append(entry);
        epoch.fast = false;
        return { hardState: state.hardState, snapshot, entries: state.entries };
    }

    /** What a power cut leaves: returns the number of unsynced operations and how many the plan lost. */
    crash(plan: CrashPlan): { pending: number; lost: number } {
        this.epoch.alive = false;
        const pending = this.fs.pendingOps().length;
        let lost = 0;
        const counting: CrashPlan = (op, position, all) => {
            const fate = plan(op, position, all);
            if (fate !== 'apply') lost++;
            return fate;
        };
        this.fs = this.fs.crash(counting);
        this.store = undefined;
        this.port = undefined;
        return { pending, lost };
    }

    /** The node left the cluster for good: nothing of it runs any more. */
    abandon(): void {
        this.epoch.alive = false;
        this.store = undefined;
        this.port = undefined;
    }

    /**
     * After a load: every acknowledged write must have survived, except entries that a truncation
     * issued after them (and not yet acknowledged) may have replaced.
     */
    private checkLoaded(hardState: HardState, snapshot: StoredSnapshot | undefined,
        entries: readonly Entry[]): void {
        const acked = this.hardState;
        if (hardState.term < acked.term ||
            (hardState.term === acked.term && acked.vote !== 0n && hardState.vote !== acked.vote)) {
            this.fail(`loaded term ${hardState.term} vote ${hardState.vote} is older than the acknowledged term ` +
                `${acked.term} vote ${acked.vote}`);
        }
        const loadedSnapshot = snapshot?.meta.index ?? 0;
        if (this.snapshot !== undefined && loadedSnapshot < this.snapshot.meta.index) {
            this.fail(`loaded snapshot ${loadedSnapshot} is older than the acknowledged one ` +
                `${this.snapshot.meta.index}`);
        }
        let truncatedFrom = Infinity;
        for (const w of this.inFlight) {
            if (w.truncateFrom !== undefined) truncatedFrom = Math.min(truncatedFrom, w.truncateFrom);
            if (w.install !== undefined) truncatedFrom = Math.min(truncatedFrom, w.install.meta.index + 1);
        }
        const first = entries[0]?.index ?? loadedSnapshot + 1;
        const hi = Math.min(this.log.lastIndex, truncatedFrom - 1);
        for (const entry of this.log.entries(loadedSnapshot + 1, hi)) {
            const loaded = entries[entry.index - first];
            if (loaded === undefined || loaded.index !== entry.index || loaded.term !== entry.term ||
                loaded.type !== entry.type || !Buffer.from(loaded.data).equals(Buffer.from(entry.data))) {
                this.fail(`acknowledged entry ${entry.index}/${entry.term} lost or changed by a crash ` +
                    `(loaded ${loaded === undefined ? 'nothing' : `${loaded.index}/${loaded.term}`}, log ` +
                    `${first}..${first + entries.length - 1} after snapshot ${loadedSnapshot})`);
            }
        }
    }

    // ---- writes ---------------------------------------------------------------------------------

    private requirePort(): { store: LogStore; port: LogStorePort } {
        if (this.store === undefined || this.port === undefined) {
            throw new SimFailure('crash', `node ${this.nodeId}: disk write without an open store`);
        }
        return { store: this.store, port: this.port };
    }

    /** Issues one Ready's writes; resolves when they are durable. */
    persist(write: PendingWrite): Promise<void> {
        const { port } = this.requirePort();
        this.host.noteAsync();
        this.inFlight.push(write);
        const hasWrite = write.install !== undefined || write.hardState !== undefined ||
            write.truncateFrom !== undefined || write.entries.length > 0;
        if (!hasWrite) return Promise.resolve();
        if (write.install !== undefined) this.installing.set(write.install.meta.index, write.install.data);
        return port.persist({
            snapshot: write.install?.meta,
            hardState: write.hardState,
            truncateFrom: write.truncateFrom,
            entries: write.entries,
        });
    }

    /** Writes a snapshot the state machine took; resolves when it is durable. */
    storeSnapshot(write: PendingWrite): Promise<void> {
        const { store } = this.requirePort();
        const take = write.take;
        if (take === undefined) throw new Error('storeSnapshot without a snapshot');
        this.host.noteAsync();
        this.inFlight.push(write);
        return writeSnapshot(store, take.snapshot.meta, take.snapshot.data);
    }

    /** Drops stored entries ≤ upTo (after a durable snapshot at or past it). */
    compact(upTo: LogIndex): Promise<void> {
        const { port } = this.requirePort();
        this.host.noteAsync();
        return port.compact(upTo);
    }

    private commitInstalled(meta: SnapshotMeta): Promise<void> {
        const data = this.installing.get(meta.index);
        const store = this.store;
        if (data === undefined || store === undefined) {
            return Promise.reject(new Error(`node ${this.nodeId}: no data for snapshot ${meta.index}`));
        }
        this.installing.delete(meta.index);
        return writeSnapshot(store, meta, data);
    }

    /**
     * The store acknowledged `write` (the oldest in flight): record it in the model, checking
     * the driver contract's shape rules.
     */
    acknowledge(write: PendingWrite): void {
        const head = this.inFlight.shift();
        if (head !== write) this.fail('acknowledgements out of issue order');
        if (write.install !== undefined) {
            const meta = write.install.meta;
            this.snapshot = write.install;
            this.log.reset(meta.index, meta.term, write.install.data.stateHash);
        }
        if (write.hardState !== undefined) {
            const next = write.hardState;
            if (next.term < this.hardState.term) {
                this.fail(`durable term goes back from ${this.hardState.term} to ${next.term}`);
            }
            if (next.term === this.hardState.term && this.hardState.vote !== 0n && next.vote !== this.hardState.vote) {
                this.fail(`durable vote in term ${next.term} changes from ${this.hardState.vote} to ${next.vote}`);
            }
            this.hardState = next;
        }
        if (write.truncateFrom !== undefined) {
            if (write.truncateFrom <= this.log.baseIndex) {
                this.fail(`truncateFrom ${write.truncateFrom} reaches into the snapshot/base ${this.log.baseIndex}`);
            }
            this.log.truncateFrom(write.truncateFrom);
        }
        for (const entry of write.entries) {
            if (entry.index !== this.log.lastIndex + 1) {
                this.fail(`entry ${entry.index} does not follow the stored last index ${this.log.lastIndex}`);
            }
            this.log.append(entry);
        }
        if (write.take !== undefined) this.storeTakenSnapshot(write.take.snapshot, write.take.keepTrailing);
    }

    private storeTakenSnapshot(snapshot: StoredSnapshot, keepTrailing: number): void {
        const index = snapshot.meta.index;
        if (this.snapshot !== undefined && this.snapshot.meta.index >= index) return;
        if (index > this.log.lastIndex || index < this.log.baseIndex) return;
        this.snapshot = snapshot;
        this.log.compactTo(Math.max(this.log.baseIndex, index - keepTrailing));
    }
}

async function writeSnapshot(store: LogStore, meta: SnapshotMeta, data: SmSnapshot): Promise<void> {
    const writer = await store.snapshots.create(meta);
    try {
        await writer.write(encodeSmSnapshot(data));
        await writer.commit();
    } catch (error) {
        await writer.abort().catch(() => undefined);
        throw error;
    }
}

// ---- the state machine's snapshot bytes -------------------------------------------------------

/** stateHash u32, count u32, then (key u32, opId u32) per register; the rest is in the meta. */
export function encodeSmSnapshot(data: SmSnapshot): Uint8Array {
    const bytes = Buffer.alloc(8 + 8 * data.kv.length);
    bytes.writeUInt32LE(data.stateHash >>> 0, 0);
    bytes.writeUInt32LE(data.kv.length, 4);
    data.kv.forEach(([key, value], i) => {
        bytes.writeUInt32LE(key >>> 0, 8 + 8 * i);
        bytes.writeUInt32LE(value >>> 0, 12 + 8 * i);
    });
    return bytes;
}

export function decodeSmSnapshot(meta: SnapshotMeta, bytes: Uint8Array): SmSnapshot {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (b.length < 8) throw new StorageError('simulated snapshot data too short', 'ERR_STORAGE_CORRUPT');
    const count = b.readUInt32LE(4);
    if (b.length !== 8 + 8 * count) throw new StorageError('simulated snapshot data length', 'ERR_STORAGE_CORRUPT');
    const kv: [number, number][] = [];
    for (let i = 0; i < count; i++) kv.push([b.readUInt32LE(8 + 8 * i), b.readUInt32LE(12 + 8 * i)]);
    return {
        index: meta.index,
        term: meta.term,
        stateHash: b.readUInt32LE(0),
        kv,
        configuration: meta.configuration,
        configurationIndex: meta.configurationIndex,
    };
}

// ---- syncs that take simulated time ----------------------------------------------------------

/**
 * A FileSystem over SimFs whose syncs wait for `latency()` (when it returns a promise) before
 * taking effect; everything else is SimFs's own (immediate, page cache only). An O_DSYNC write
 * (writeDurable, when the SimFs has them) reaches the page cache at once and becomes durable
 * after the latency: a crash in between may lose or tear it.
 */
export class LatencyFs implements FileSystem {
    constructor(private readonly inner: SimFs, private readonly latency: () => Promise<void> | undefined) {}

    async open(path: string, mode: OpenMode): Promise<FsFile> {
        return new LatencyFile(await this.inner.open(path, mode), this.latency);
    }
    readFile(path: string): Promise<Uint8Array> {
        return this.inner.readFile(path);
    }
    rename(from: string, to: string): Promise<void> {
        return this.inner.rename(from, to);
    }
    unlink(path: string): Promise<void> {
        return this.inner.unlink(path);
    }
    mkdir(path: string): Promise<void> {
        return this.inner.mkdir(path);
    }
    readdir(path: string): Promise<string[]> {
        return this.inner.readdir(path);
    }
    stat(path: string): Promise<FileStat> {
        return this.inner.stat(path);
    }
    fsyncDir(path: string): Promise<void> {
        const wait = this.latency();
        return wait === undefined ? this.inner.fsyncDir(path) : wait.then(() => this.inner.fsyncDir(path));
    }
}

class LatencyFile implements FsFile {
    /** Present when the SimFs file has it (lib/real-fs.ts hasDurableWrite tests for it). */
    readonly writeDurable: ((position: number, data: Uint8Array) => Promise<void>) | undefined;

    constructor(private readonly file: FsFile, private readonly latency: () => Promise<void> | undefined) {
        const durable = (file as { writeDurable?: SimWriteDurable }).writeDurable;
        this.writeDurable = durable === undefined ? undefined : (position, data) => durable(position, data, latency);
    }
    get path(): string {
        return this.file.path;
    }
    read(position: number, length: number): Promise<Uint8Array> {
        return this.file.read(position, length);
    }
    write(position: number, data: Uint8Array): Promise<void> {
        return this.file.write(position, data);
    }
    append(data: Uint8Array): Promise<void> {
        return this.file.append(data);
    }
    truncate(size: number): Promise<void> {
        return this.file.truncate(size);
    }
    datasync(): Promise<void> {
        const wait = this.latency();
        return wait === undefined ? this.file.datasync() : wait.then(() => this.file.datasync());
    }
    sync(): Promise<void> {
        const wait = this.latency();
        return wait === undefined ? this.file.sync() : wait.then(() => this.file.sync());
    }
    size(): Promise<number> {
        return this.file.size();
    }
    close(): Promise<void> {
        return this.file.close();
    }
}
