// State machine snapshots of a node (DESIGN.md §3.4): taking them, compacting the log behind
// them, streaming them to a follower that fell behind, staging and installing one received from
// the leader, and restoring one at start. The snapshot store of the log (src/log) is the one
// durable home of snapshots; the Fsm produces and installs page-exact images.
//
// Rules that keep restart correct:
// - The log is compacted only up to the state machine's durable index (its files are fsynced
//   up to there), never past it, so the entries a restart must replay are always there.
// - A snapshot received from the leader is staged (written, uncommitted) while it streams and
//   committed only when the raft core accepted it (LogPort.persist with a snapshot), between
//   the truncation of a conflicting suffix and the compaction, as the log store requires.
// - At start, a stored snapshot newer than the state machine's durable index is installed into
//   the state machine first (the log starts after the newest snapshot).
//
// Memory: the raft core keeps every entry after its compaction point in memory, so the log is
// bounded in BYTES as well as in entries. A snapshot is taken when thresholdBytes payload bytes
// were applied since the last one, or thresholdEntries entries once their payload is also
// thresholdSizeFraction of the last snapshot's size (shouldTakeSnapshot), and the log kept
// behind it is the newest trailingEntries entries that fit in trailingBytes. The in-memory log
// then stays near trailingBytes + thresholdBytes (plus what arrives while a snapshot is being
// written, and whatever the durable-index rule forbids dropping). Followers that fall behind
// the kept log receive the snapshot. Each snapshot is a full page-exact copy, written twice
// (by the worker, then into the store), so a database of D bytes costs 2·D of writes per
// snapshot: the size fraction keeps that near 8× the bytes applied (without it, a 256 MiB
// database took a snapshot every 1024 small writes and its single-writer throughput halved),
// and the byte bound costs about 2·D/128 MiB per byte written once D passes 512 MiB (16× at
// 1 GiB). Bounding memory without that cost needs the core to drop applied entries from memory
// and read them back from the durable log when a follower needs them (as etcd's Storage does);
// until then raise thresholdBytes for big databases.

import { open } from 'node:fs/promises';
import { ClosedError, StorageError } from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { Fsm } from '../fsm/fsm.js';
import type { LogStore, SnapshotWriter } from '../log/index.js';
import type { SnapshotOffer, SnapshotSink } from '../peer/index.js';
import { decodeConfiguration } from '../raft/configuration.js';
import { EntryType, type Configuration, type Entry, type LogIndex, type SnapshotMeta } from '../raft/types.js';
import type { RaftDriver } from './driver.js';

/** A snapshot being received from the leader, in the snapshot store but not committed. */
interface Staged {
    readonly meta: SnapshotMeta;
    readonly writer: SnapshotWriter;
    complete: boolean;
    bytes: number;
}

export interface SnapshotOptions {
    /** Applied entries between two snapshots (at least; see thresholdSizeFraction). Default 1024 (dqlite's). */
    readonly thresholdEntries?: number;
    /**
     * A snapshot copies every database whole, twice (the worker's image, then the store's copy),
     * so with a big database thresholdEntries alone would rewrite it after every 1024 small writes
     * (a 1 GiB database: 2 GiB of snapshot writes per ~8 MiB written). After thresholdEntries, a
     * snapshot also waits until the payload applied since the last one is this fraction of that
     * snapshot's size, which keeps the snapshot writes within 2 / fraction bytes per byte
     * applied (8× at the default 0.25); thresholdBytes still bounds the wait (memory). 0: off
     * (thresholdEntries alone, as dqlite). The size is that of the last snapshot taken or
     * received, at start the newest stored one's; with none yet, thresholdEntries alone decides.
     * A growing database can reach 2 / fraction + 2 (10×): each snapshot is at most the last
     * one plus the bytes applied since.
     */
    readonly thresholdSizeFraction?: number;
    /**
     * Payload bytes of applied entries that trigger a snapshot even before thresholdEntries
     * (large transactions). Default 128 MiB.
     */
    readonly thresholdBytes?: number;
    /** Entries kept in the log behind a snapshot, for slow followers. Default 8192 (dqlite's). */
    readonly trailingEntries?: number;
    /**
     * At most this many payload bytes of entries kept behind a snapshot (fewer entries than
     * trailingEntries when they are large). Default 32 MiB. The state machine's durable index
     * still wins: entries after it are never dropped.
     */
    readonly trailingBytes?: number;
}

export const SNAPSHOT_DEFAULTS = {
    thresholdEntries: 1024,
    thresholdSizeFraction: 0.25,
    thresholdBytes: 128 * 1024 * 1024,
    trailingEntries: 8192,
    trailingBytes: 32 * 1024 * 1024,
} as const;

const CHUNK_BYTES = 1024 * 1024;

/**
 * How many entries to keep behind a snapshot at `snapshotIndex`: the newest entries at or
 * before it, at most `trailingEntries` of them and at most `trailingBytes` payload bytes (an
 * entry that alone is bigger is not kept), but always every entry after `durableIndex` (the
 * state machine's files do not have those yet, a restart replays them). `entries` are the
 * log's entries up to the snapshot, oldest first (those already compacted are not needed).
 */
export function trailingToKeep(entries: readonly { index: LogIndex; data: Uint8Array }[], snapshotIndex: LogIndex,
    durableIndex: LogIndex, limits: { trailingEntries: number; trailingBytes: number }): number {
    let keep = 0;
    let bytes = 0;
    for (let i = entries.length - 1; i >= 0 && keep < limits.trailingEntries; i--) {
        const entry = entries[i] as { index: LogIndex; data: Uint8Array };
        if (entry.index > snapshotIndex) continue;
        bytes += entry.data.length;
        if (bytes > limits.trailingBytes) break;
        keep++;
    }
    return Math.max(keep, snapshotIndex - Math.min(durableIndex, snapshotIndex));
}

/**
 * Whether to take a snapshot now: thresholdBytes of payload applied since the last one (the
 * memory bound), or thresholdEntries entries once that payload is also sizeFraction of the last
 * snapshot's size (the write-amplification bound; see SnapshotOptions.thresholdSizeFraction).
 */
export function shouldTakeSnapshot(since: { entriesSince: number; bytesSince: number; lastBytes: number },
    limits: { threshold: number; thresholdBytes: number; sizeFraction: number }): boolean {
    if (since.bytesSince >= limits.thresholdBytes) return true;
    return since.entriesSince >= limits.threshold && since.bytesSince >= since.lastBytes * limits.sizeFraction;
}

function positiveOption(name: string, value: number | undefined, fallback: number, zeroOk: boolean): number {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 0 || (value === 0 && !zeroOk)) {
        throw new RangeError(`snapshot.${name} must be a ${zeroOk ? 'non-negative' : 'positive'} integer`);
    }
    return value;
}

export class SnapshotManager {
    private readonly lifecycle = new Lifecycle('snapshots');
    private readonly threshold: number;
    private readonly sizeFraction: number;
    /**
     * Bytes of the last snapshot taken or received (0: none yet). At start, the newest stored
     * snapshot's file size, read in the background (`sizing`, awaited by close()).
     */
    private lastBytes = 0;
    private readonly sizing: Promise<void>;
    private readonly thresholdBytes: number;
    private readonly trailing: number;
    private readonly trailingBytes: number;
    private taking: Promise<void> | undefined;
    private lastIndex: LogIndex;
    /** Payload bytes of the entries (lastIndex, countedUpTo] (what the next snapshot covers). */
    private bytesSince = 0;
    private countedUpTo: LogIndex;
    private staged: Staged | undefined;
    /**
     * A received snapshot that was complete when a newer transfer began: the core may have accepted
     * it and the LogPort be about to commit it (commitStaged), so the newer transfer must not abort
     * it. At most one is kept; the transfer after next, commitStaged or close() ends it.
     */
    private stagedComplete: Staged | undefined;

    constructor(
        private readonly fsm: Fsm,
        private readonly store: LogStore,
        private readonly driver: () => RaftDriver,
        options: SnapshotOptions = {},
        private readonly logger: Logger = silentLogger,
    ) {
        const d = SNAPSHOT_DEFAULTS;
        this.threshold = positiveOption('thresholdEntries', options.thresholdEntries, d.thresholdEntries, false);
        this.thresholdBytes = positiveOption('thresholdBytes', options.thresholdBytes, d.thresholdBytes, false);
        const fraction = options.thresholdSizeFraction ?? d.thresholdSizeFraction;
        if (!(Number.isFinite(fraction) && fraction >= 0)) {
            throw new RangeError('snapshot.thresholdSizeFraction must be a non-negative number');
        }
        this.sizeFraction = fraction;
        this.trailing = positiveOption('trailingEntries', options.trailingEntries, d.trailingEntries, true);
        this.trailingBytes = positiveOption('trailingBytes', options.trailingBytes, d.trailingBytes, true);
        this.lastIndex = store.snapshots.latest()?.index ?? 0;
        this.countedUpTo = this.lastIndex;
        this.sizing = this.lastIndex === 0 ? Promise.resolve() : store.snapshots.latestFileBytes().then((bytes) => {
            if (this.lastBytes === 0) this.lastBytes = bytes;
        }, (error: unknown) => this.logger.warn({ err: error }, 'cannot read the size of the newest snapshot'));
        this.lifecycle.moveTo('open');
    }

    /** Before the core starts: bring the state machine up to the newest stored snapshot. */
    static async restore(fsm: Fsm, store: LogStore, durableIndex: LogIndex, logger: Logger): Promise<LogIndex> {
        const latest = store.snapshots.latest();
        if (latest === undefined || latest.index <= durableIndex) return durableIndex;
        logger.info({ snapshot: latest.index, durableIndex }, 'restoring the state machine from a snapshot');
        await installFromStore(fsm, store, latest);
        return latest.index;
    }

    /** After entries were applied: take a snapshot when enough accumulated (one at a time). */
    maybeTake(applied: LogIndex): void {
        if (!this.lifecycle.isOpen) return;
        this.count(applied);
        if (this.taking !== undefined) return;
        if (!shouldTakeSnapshot({ entriesSince: applied - this.lastIndex, bytesSince: this.bytesSince,
            lastBytes: this.lastBytes }, { threshold: this.threshold, thresholdBytes: this.thresholdBytes,
            sizeFraction: this.sizeFraction })) return;
        this.taking = this.take().catch((error: unknown) => {
            if (this.lifecycle.isStopping) this.logger.debug({ err: error }, 'snapshot not taken: closing');
            else this.logger.warn({ err: error }, 'snapshot not taken');
        }).finally(() => {
            this.taking = undefined;
        });
    }

    /** Adds the payload bytes of the entries applied up to `applied` to bytesSince. */
    private count(applied: LogIndex): void {
        if (applied <= this.countedUpTo) return;
        for (const entry of this.entriesIn(this.countedUpTo + 1, applied + 1)) this.bytesSince += entry.data.length;
        this.countedUpTo = applied;
    }

    /** A snapshot at `index` was taken or installed: only what follows it counts now. */
    private snapshotAt(index: LogIndex): void {
        this.lastIndex = Math.max(this.lastIndex, index);
        if (this.countedUpTo <= this.lastIndex) {
            this.countedUpTo = this.lastIndex;
            this.bytesSince = 0;
            return;
        }
        this.bytesSince = 0;
        for (const entry of this.entriesIn(this.lastIndex + 1, this.countedUpTo + 1)) {
            this.bytesSince += entry.data.length;
        }
    }

    /** The entries lo ≤ index < hi that the core's log still holds (none outside it). */
    private entriesIn(lo: LogIndex, hi: LogIndex): readonly Entry[] {
        const status = this.driver().status();
        const from = Math.max(lo, status.firstIndex, 1);
        const to = Math.min(hi, status.lastIndex + 1);
        return from < to ? this.driver().entries(from, to) : [];
    }

    private async take(): Promise<void> {
        const durable = await this.fsm.sync();
        const handle = await this.fsm.snapshot();
        try {
            const meta = this.metaAt(handle.index);
            if (meta === undefined) return;
            const writer = await this.store.snapshots.create(meta);
            try {
                await copyFile(handle.path, handle.bytes, writer, () => this.lifecycle.isStopping);
                await writer.commit();
            } catch (error) {
                await writer.abort();
                throw error;
            }
            this.snapshotAt(meta.index);
            this.lastBytes = handle.bytes;
            // Never compact past what the state machine has durably on disk.
            const behind = this.entriesIn(meta.index - this.trailing + 1, meta.index + 1);
            const keep = trailingToKeep(behind, meta.index, durable,
                { trailingEntries: this.trailing, trailingBytes: this.trailingBytes });
            if (this.lifecycle.isOpen) await this.driver().compact(meta, keep);
            this.logger.info({ index: meta.index, bytes: handle.bytes, keep, durable }, 'snapshot taken');
        } finally {
            await handle.release();
        }
    }

    /** Term and configuration at `index`, from the core's log (undefined: not there any more). */
    private metaAt(index: LogIndex): SnapshotMeta | undefined {
        const driver = this.driver();
        const status = driver.status();
        const previous = this.store.snapshots.latest();
        if (index <= (previous?.index ?? 0)) return undefined;
        const [entry] = driver.entries(index, index + 1);
        if (entry === undefined) return undefined;
        let configuration: Configuration | undefined;
        let configurationIndex = 0;
        const from = Math.max(status.firstIndex, 1);
        const entries = driver.entries(from, index + 1);
        for (let i = entries.length - 1; i >= 0 && configuration === undefined; i--) {
            const e = entries[i];
            if (e?.type === EntryType.change) {
                configuration = decodeConfiguration(e.data);
                configurationIndex = e.index;
            }
        }
        if (configuration === undefined) {
            if (previous === undefined) return undefined;
            configuration = previous.configuration;
            configurationIndex = previous.configurationIndex;
        }
        return { index, term: entry.term, configuration, configurationIndex };
    }

    /** The bytes of stored snapshot `meta`, for the peer transport. */
    async *source(meta: SnapshotMeta): AsyncGenerator<Uint8Array> {
        const reader = await this.store.snapshots.open(meta.index);
        try {
            for (;;) {
                const chunk = await reader.read();
                if (chunk === undefined) return;
                yield chunk;
            }
        } finally {
            await reader.close();
        }
    }

    /** A snapshot streams in from the leader: stage it in the snapshot store, uncommitted. */
    async sink(offer: SnapshotOffer): Promise<SnapshotSink> {
        const previous = this.staged;
        this.staged = undefined;
        if (previous?.complete === true) {
            const older = this.stagedComplete;
            this.stagedComplete = previous;
            await older?.writer.abort();
        } else {
            await previous?.writer.abort();
        }
        const writer = await this.store.snapshots.create(offer.meta);
        const staged: Staged = { meta: offer.meta, writer, complete: false, bytes: 0 };
        this.staged = staged;
        return {
            write: (chunk) => {
                if (this.staged !== staged) {
                    return Promise.reject(new ClosedError(`snapshot ${offer.meta.index}/${offer.meta.term} was `
                        + 'superseded by a newer transfer'));
                }
                staged.bytes += chunk.length;
                return writer.write(chunk);
            },
            finish: () => {
                staged.complete = true;
            },
            abort: async () => {
                if (this.staged === staged) this.staged = undefined;
                if (this.stagedComplete === staged) this.stagedComplete = undefined;
                await writer.abort();
            },
        };
    }

    /** The core accepted snapshot `meta`: make the staged copy durable (called by the LogPort). */
    async commitStaged(meta: SnapshotMeta): Promise<void> {
        const matches = (s: Staged | undefined): s is Staged => s !== undefined && s.complete
            && s.meta.index === meta.index && s.meta.term === meta.term;
        let staged: Staged;
        if (matches(this.staged)) {
            staged = this.staged;
            this.staged = undefined;
        } else if (matches(this.stagedComplete)) {
            staged = this.stagedComplete;
            this.stagedComplete = undefined;
        } else {
            throw new Error(`snapshot ${meta.index}/${meta.term} was not staged`);
        }
        await staged.writer.commit();
        this.snapshotAt(meta.index);
        this.lastBytes = staged.bytes;
    }

    /** Installs committed snapshot `meta` into the state machine (the driver's apply step). */
    installIntoFsm(meta: SnapshotMeta): Promise<void> {
        return installFromStore(this.fsm, this.store, meta);
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            await this.sizing;
            await this.taking;
            const staged = [this.staged, this.stagedComplete];
            this.staged = undefined;
            this.stagedComplete = undefined;
            for (const s of staged) await s?.writer.abort();
        });
    }
}

/**
 * Streams the state machine's snapshot file into the store through one reused buffer: a
 * snapshot is as big as the databases, and a fresh buffer per chunk would leave that much
 * garbage for the collector each time (the process's memory would grow to hold it).
 */
async function copyFile(path: string, bytes: number, writer: SnapshotWriter, stopping: () => boolean): Promise<void> {
    const file = await open(path, 'r');
    try {
        const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(bytes, 1)));
        for (let offset = 0; offset < bytes;) {
            // A big database takes seconds to copy: a node that is closing does not wait for it.
            if (stopping()) throw new ClosedError('snapshot abandoned: the node is closing');
            const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, bytes - offset), offset);
            if (bytesRead === 0) throw new StorageError(`snapshot file ${path} ends at ${offset} of ${bytes} bytes`);
            // The writer is done with the chunk once its write resolved (it frames a copy).
            await writer.write(buffer.subarray(0, bytesRead));
            offset += bytesRead;
        }
    } finally {
        await file.close();
    }
}

async function installFromStore(fsm: Fsm, store: LogStore, meta: SnapshotMeta): Promise<void> {
    const reader = await store.snapshots.open(meta.index);
    let install: Awaited<ReturnType<Fsm['beginInstall']>>;
    try {
        install = await fsm.beginInstall();
    } catch (error) {
        await reader.close();
        throw error;
    }
    try {
        for (;;) {
            const chunk = await reader.read();
            if (chunk === undefined) break;
            await install.write(chunk);
        }
        const index = await install.finish();
        if (index !== meta.index) throw new Error(`installed snapshot ${index}, expected ${meta.index}`);
    } catch (error) {
        await install.abort();
        throw error;
    } finally {
        await reader.close();
    }
}
