// The durable raft log of one node: term and vote (metadata.ts), entries in segment files, and
// snapshots (snapshot-store.ts), all in one directory. docs/disk-format.md has the format.
//
// Use from the driver loop (src/raft/ready.ts has the contract):
//
//     const { store, state } = await LogStore.open({ fs: realFs, dir: `${dataDir}/raft` });
//     // state.hardState, state.snapshot, state.entries → the raft core's InitialState
//     for each Ready r:
//         if (r.snapshot)  { /* install: see below */ }
//         await store.persist(r);    // hardState, truncateFrom, entries — in that order
//         core.persisted(r.lastEntry) ...
//
// Every mutating call is queued and executed in call order; each resolves only when what it
// did is durable (fdatasync / fsyncDir returned), and when a call resolves, all earlier calls
// have too. So the driver may fire truncateSuffix and append without awaiting in between.
// Group commit: appends (and a truncation followed by appends) that queue up while a write is
// in flight go into the next batch together: one write and one fdatasync for all of them (on
// RealFs one O_DSYNC write: one thread-pool call). Likewise term/vote writes queued behind one
// in flight become one write of the newest (writeHardStates).
//
// Truncation is logical: truncateSuffix(from) writes a batch whose firstIndex is `from` (with
// the entries appended right after it, if any), and load replays batches in order, each one
// replacing everything from its firstIndex on. compactPrefix(upTo) drops entries ≤ upTo from
// the index and deletes segment files that no longer hold a live entry; it requires a durable
// snapshot at ≥ upTo (entries at or below the newest snapshot's index are dropped on load).
//
// Installing a snapshot received from the leader: `await store.truncateSuffix(meta.index + 1)`
// (drops a conflicting suffix first, so a crash never leaves the new snapshot followed by
// entries of another history), write it with `store.snapshots.create(meta)`, `commit()`, then
// `await store.compactPrefix(meta.index)`: the log is then empty and the next append is
// meta.index + 1. After taking a local snapshot: commit it, then compactPrefix(meta.index −
// trailing). Note that entries kept below the newest snapshot's index are not reloaded after
// a restart (the loaded log starts right after the snapshot).
//
// Failures: any I/O error fails the store (fail-stop): the pending and every later call reject
// with that StorageError (code ERR_STORAGE); nothing is retried; options.onFailure is called
// at once (also for background work such as preallocating the next segment). Corruption of synced data
// found by open() or read() is a StorageError with code ERR_STORAGE_CORRUPT. close() is
// idempotent, waits for queued work and leaves the files for the next open().

import { assert } from '../lib/assert.js';
import { Deferred } from '../lib/deferred.js';
import { StorageError } from '../lib/errors.js';
import type { FileSystem, FsFile } from '../lib/fs.js';
import { isNotFound, joinPath, parentPath } from '../lib/fs.js';
import { hasDurableWrite } from '../lib/real-fs.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import type { Entry, HardState, LogIndex, SnapshotMeta, Term } from '../raft/types.js';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
    batchBytes, encodeBatch, encodeSegmentHeader, parseBatch, parseBatchHeaderOk, payloadOf, SEGMENT_HEADER_BYTES,
} from './format.js';
import { GuardedFs, StoreGuard } from './guard.js';
import { loadMetadata, writeMetadata } from './metadata.js';
import type { LoadedMetadata } from './metadata.js';
import type { Loc, ParsedSegment } from './segments.js';
import { Segment, openSegmentName, parseSegment, parseSegmentName, replaySegments } from './segments.js';
import { SnapshotStore, parseSnapshotFileName, snapshotFileName, verifySnapshotFile } from './snapshot-store.js';

export interface LogStoreOptions {
    readonly fs: FileSystem;
    /** The raft directory (created, with a fsync of its parent, when missing). */
    readonly dir: string;
    /** Preallocated size of a segment. Default 8 MiB (dqlite's). A larger batch grows its segment. */
    readonly segmentBytes?: number;
    /** Group commit: the most bytes of entries one batch takes. Default 4 MiB (≥ one append). */
    readonly batchBytesMax?: number;
    readonly logger?: Logger;
    /**
     * Called once when the store fails (an I/O error, possibly in background work such as
     * preallocating the next segment, with no call pending): the node should stop now.
     */
    readonly onFailure?: (error: StorageError) => void;
    /**
     * How the writer loop gives other callers one turn to queue up before it takes a batch
     * (group commit). Default: one event-loop turn (setImmediate). The raft simulator passes
     * a turn of its own virtual-time agenda, so a run stays a pure function of its seed.
     */
    readonly yieldTurn?: () => Promise<unknown>;
}

/** What open() found on disk; everything in it is durable. */
export interface LoadedLog {
    /** Term 0 and vote 0n on a fresh node. */
    readonly hardState: HardState;
    readonly snapshot: SnapshotMeta | undefined;
    /** Every entry after the snapshot (or from index 1), contiguous. */
    readonly entries: Entry[];
}

type Op =
    | { readonly kind: 'append'; readonly entries: readonly Entry[]; readonly done: Deferred<void> }
    | { readonly kind: 'truncate'; readonly from: LogIndex; readonly done: Deferred<void> }
    | { readonly kind: 'hardState'; readonly hardState: HardState; readonly done: Deferred<void> }
    | { readonly kind: 'compact'; readonly upTo: LogIndex; readonly done: Deferred<void> }
    | { readonly kind: 'read'; readonly lo: LogIndex; readonly hi: LogIndex; readonly done: Deferred<Entry[]> };

const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
const DEFAULT_BATCH_BYTES_MAX = 4 * 1024 * 1024;
/** Batches up to this size are encoded into the store's reusable scratch buffer. */
const SCRATCH_BYTES_MAX = 8 * 1024 * 1024;
const ZERO_CHUNK_BYTES = 1024 * 1024;
/** Preallocation writes this one buffer (never modified) instead of allocating zeros per chunk. */
const ZEROS = new Uint8Array(ZERO_CHUNK_BYTES);

interface OpenSegment {
    readonly segment: Segment;
    readonly file: FsFile;
    readonly capacity: number;
}

export class LogStore {
    /** Snapshots of this log (same directory, same fail-stop guard). */
    readonly snapshots: SnapshotStore;
    private readonly fs: FileSystem;
    private readonly dir: string;
    private readonly segmentBytes: number;
    private readonly batchBytesMax: number;
    private readonly logger: Logger;
    private readonly guard: StoreGuard;
    private readonly yieldTurn: () => Promise<unknown>;

    private metadata: LoadedMetadata['current'];
    private readonly metadataPresent: boolean[];
    private segments = new Map<number, Segment>();
    private open: OpenSegment | undefined;
    /** The next open segment, being preallocated in the background. */
    private prepared: Promise<OpenSegment> | undefined;
    private nextSeq: number;
    private lastBatchSeq: number | undefined;
    /** Index of locs[0]. */
    private base: LogIndex;
    private locs: Loc[];
    /** The last index once every queued op is done (what append() validates against). */
    private queuedLast: LogIndex;

    private queue: Op[] = [];
    private pumping: Promise<void> | undefined;
    /**
     * Where the writer encodes batches (grown as needed, up to SCRATCH_BYTES_MAX). Reused only
     * after the write of the previous batch returned: RealFs is done with the caller's bytes
     * then (the kernel copied them); SimFs and BufferedFs keep a copy (slice() of the plain
     * Uint8Array encodeBatch returns). The crash suite fails if a file system kept a view.
     */
    private scratch: Buffer | undefined;

    private constructor(init: {
        fs: FileSystem; dir: string; options: LogStoreOptions; guard: StoreGuard; metadata: LoadedMetadata;
        snapshots: SnapshotMeta[]; segments: Segment[]; nextSeq: number; lastBatchSeq: number | undefined;
        base: LogIndex; locs: Loc[];
    }) {
        this.fs = init.fs;
        this.dir = init.dir;
        this.segmentBytes = init.options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
        this.batchBytesMax = init.options.batchBytesMax ?? DEFAULT_BATCH_BYTES_MAX;
        this.logger = init.options.logger ?? silentLogger;
        this.yieldTurn = init.options.yieldTurn ?? yieldToEventLoop;
        this.guard = init.guard;
        this.metadata = init.metadata.current;
        this.metadataPresent = [...init.metadata.present];
        for (const s of init.segments) this.segments.set(s.seq, s);
        this.nextSeq = init.nextSeq;
        this.lastBatchSeq = init.lastBatchSeq;
        this.base = init.base;
        this.locs = init.locs;
        this.queuedLast = this.lastIndex;
        this.snapshots = new SnapshotStore(this.fs, this.dir, this.guard, init.snapshots);
        this.guard.onFail = (error) => {
            this.rejectQueued(error);
            this.logger.error({ err: error, dir: this.dir }, 'log store failed');
            init.options.onFailure?.(error);
        };
    }

    // ---- opening --------------------------------------------------------------------------------

    /**
     * Loads the log in `options.dir`: validates everything, then finishes interrupted work
     * (torn tails cut, open segments closed, temporary and superseded files deleted). Rejects
     * with ERR_STORAGE_CORRUPT when synced data is damaged, ERR_STORAGE on an I/O error.
     */
    static async open(options: LogStoreOptions): Promise<{ store: LogStore; state: LoadedLog }> {
        const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
        assert(Number.isInteger(segmentBytes) && segmentBytes >= 4096, 'segmentBytes must be ≥ 4096');
        const guard = new StoreGuard('LogStore');
        const fs = new GuardedFs(guard, options.fs);
        const dir = options.dir;
        try {
            await ensureDir(options.fs, fs, dir);
            const names = await fs.readdir(dir);
            const metadata = await loadMetadata(fs, dir, names);

            // Snapshots: newest first; the two newest are verified end to end.
            const snapshotNames = names.map((n) => ({ n, p: parseSnapshotFileName(n) }))
                .filter((x) => x.p !== undefined)
                .sort((a, b) => (b.p as { index: number }).index - (a.p as { index: number }).index
                    || (b.p as { term: number }).term - (a.p as { term: number }).term);
            const snapshots: SnapshotMeta[] = [];
            for (const { n, p } of snapshotNames.slice(0, 2)) {
                const meta = await verifySnapshotFile(fs, joinPath(dir, n));
                if (meta.index !== p?.index || meta.term !== p.term) {
                    throw new StorageError(`${n}: name does not match its metadata`, 'ERR_STORAGE_CORRUPT');
                }
                snapshots.push(meta);
            }
            const floor = snapshots[0]?.index ?? 0;

            const parsed: ParsedSegment[] = [];
            for (const name of names) {
                if (parseSegmentName(name) === undefined) continue;
                parsed.push(parseSegment(name, await fs.readFile(joinPath(dir, name))));
            }
            const replay = replaySegments(parsed, floor);
            const dataOf = new Map(parsed.map((p) => [p.segment, p.data] as const));
            const entries = replay.locs.map((loc, i) => entryFromLoc(dataOf, loc, floor + 1 + i));
            let maxSeq = 0;
            for (const p of parsed) maxSeq = Math.max(maxSeq, p.segment.seq);

            // Validation is over; from here on the load repairs (nothing above threw).
            for (const name of names) {
                if (name.startsWith('tmp-')) await fs.unlink(joinPath(dir, name));
            }
            for (const { n } of snapshotNames.slice(2)) await fs.unlink(joinPath(dir, n));
            const segments = await settleSegments(fs, dir, parsed, replay.locs, replay.lastBatchSeq);

            const store = new LogStore({
                fs, dir, options, guard, metadata, snapshots, segments, nextSeq: maxSeq + 1,
                lastBatchSeq: replay.lastBatchSeq, base: floor + 1, locs: replay.locs,
            });
            guard.lifecycle.moveTo('open');
            const hardState = metadata.current?.hardState ?? { term: 0, vote: 0n };
            store.logger.info({ dir, snapshot: floor, last: replay.lastIndex, term: hardState.term }, 'log loaded');
            return { store, state: { hardState, snapshot: snapshots[0], entries } };
        } catch (error) {
            throw guard.fail(error);
        }
    }

    // ---- state --------------------------------------------------------------------------------

    /** The durable term and vote. */
    get hardState(): HardState {
        return this.metadata?.hardState ?? { term: 0, vote: 0n };
    }

    /** First index held (snapshot or compaction point + 1). */
    get firstIndex(): LogIndex {
        return this.base;
    }

    /** Last durable index (the compaction point when the log is empty). */
    get lastIndex(): LogIndex {
        return this.base + this.locs.length - 1;
    }

    /** Term of a durable entry held in the log, or undefined. */
    term(index: LogIndex): Term | undefined {
        return this.locs[index - this.base]?.term;
    }

    /** The error that stopped the store, if any. */
    get failure(): StorageError | undefined {
        return this.guard.failure;
    }

    get state(): string {
        return this.guard.lifecycle.state;
    }

    // ---- mutations (queued, in call order) --------------------------------------------------------

    /** Makes term and vote durable (Raft: before answering a vote or acting in a new term). */
    setHardState(hardState: HardState): Promise<void> {
        return this.enqueue(() => {
            assert(Number.isSafeInteger(hardState.term) && hardState.term >= 0, 'bad term');
            return { kind: 'hardState', hardState, done: new Deferred<void>() };
        });
    }

    /** Appends entries that must directly follow the last queued entry. Resolves once durable. */
    append(entries: readonly Entry[]): Promise<void> {
        return this.enqueue(() => {
            assert(entries.length > 0, 'append of no entries');
            assert(entries[0]?.index === this.queuedLast + 1,
                `append at ${entries[0]?.index} does not follow ${this.queuedLast}`);
            entries.forEach((e, i) => {
                assert(e.index === (entries[0] as Entry).index + i, 'entries are not contiguous');
                assert(Number.isSafeInteger(e.term) && e.term >= 1, 'bad entry term');
            });
            this.queuedLast = (entries[entries.length - 1] as Entry).index;
            return { kind: 'append', entries: entries.slice(), done: new Deferred<void>() };
        });
    }

    /** Drops every entry with index ≥ from (durably). A no-op when there is none. */
    truncateSuffix(from: LogIndex): Promise<void> {
        return this.enqueue(() => {
            const snapshotIndex = this.snapshots.latest()?.index ?? 0;
            assert(Number.isSafeInteger(from) && from > snapshotIndex && from >= this.base,
                `truncateSuffix(${from}) below the snapshot or compaction point`);
            if (from <= this.queuedLast) this.queuedLast = from - 1;
            return { kind: 'truncate', from, done: new Deferred<void>() };
        });
    }

    /**
     * Drops entries ≤ upTo; needs a durable snapshot at ≥ upTo. With upTo beyond the last
     * entry (a snapshot install) the log becomes empty and continues at upTo + 1.
     */
    compactPrefix(upTo: LogIndex): Promise<void> {
        return this.enqueue(() => {
            const snapshotIndex = this.snapshots.latest()?.index ?? 0;
            assert(upTo <= snapshotIndex, `compactPrefix(${upTo}) beyond the newest snapshot (${snapshotIndex})`);
            if (upTo > this.queuedLast) this.queuedLast = upTo;
            return { kind: 'compact', upTo, done: new Deferred<void>() };
        });
    }

    /**
     * The persistence step of one raft Ready (src/raft/ready.ts, step 2) after any snapshot was
     * installed: hard state, then truncation, then entries, queued in that order. Resolves when
     * all of it is durable (then call core.persisted(lastEntry) and send messagesAfterPersist).
     */
    persist(ready: { readonly hardState?: HardState | undefined; readonly truncateFrom?: LogIndex | undefined;
        readonly entries: readonly Entry[] }): Promise<void> {
        const waits: Promise<void>[] = [];
        if (ready.hardState !== undefined) waits.push(this.setHardState(ready.hardState));
        if (ready.truncateFrom !== undefined) waits.push(this.truncateSuffix(ready.truncateFrom));
        if (ready.entries.length > 0) waits.push(this.append(ready.entries));
        return Promise.all(waits).then(() => undefined);
    }

    /** Entries lo ≤ index < hi, read back from disk with their checksums verified. */
    read(lo: LogIndex, hi: LogIndex): Promise<Entry[]> {
        return this.enqueue(() => {
            assert(lo <= hi && lo >= this.base && hi <= this.queuedLast + 1,
                `read [${lo}, ${hi}) outside [${this.base}, ${this.queuedLast}]`);
            return { kind: 'read', lo, hi, done: new Deferred<Entry[]>() };
        });
    }

    /** Waits for queued work, then releases every handle. Idempotent. Files stay as they are. */
    close(): Promise<void> {
        return this.guard.lifecycle.close(async () => {
            await this.pumping;
            await this.snapshots.closeAll();
            if (this.open !== undefined) {
                await this.open.file.close();
                this.open = undefined;
            }
            const prepared = this.prepared;
            this.prepared = undefined;
            if (prepared !== undefined) {
                // Left on disk as an empty open segment; the next load deletes it.
                const next = await prepared.catch(() => undefined);
                await next?.file.close();
            }
        });
    }

    // ---- the writer loop ------------------------------------------------------------------------

    private enqueue<T>(make: () => Op & { done: Deferred<T> }): Promise<T> {
        try {
            this.guard.check();
            const op = make();
            this.queue.push(op);
            this.pumping ??= this.pump();
            return op.done.promise;
        } catch (error) {
            return Promise.reject(error);
        }
    }

    private async pump(): Promise<void> {
        try {
            while (this.queue.length > 0 && this.guard.failure === undefined) {
                const op = this.queue[0] as Op;
                if (op.kind === 'append' || op.kind === 'truncate') {
                    // Group commit: give every caller that is ready (e.g. those whose previous
                    // append just resolved) one event-loop turn to queue up, so they share
                    // this batch instead of trickling into the next one.
                    await this.yieldTurn();
                    if (this.guard.failure !== undefined) break;
                    await this.writeBatch();
                    continue;
                }
                this.queue.shift();
                if (op.kind === 'hardState') {
                    await this.writeHardStates(op);
                    continue;
                }
                try {
                    if (op.kind === 'compact') {
                        await this.compact(op.upTo);
                        op.done.resolve();
                    } else {
                        op.done.resolve(await this.readEntries(op.lo, op.hi));
                    }
                } catch (error) {
                    op.done.tryReject(this.guard.fail(error));
                }
            }
        } finally {
            this.pumping = undefined;
        }
    }

    /**
     * Writes `first` and the hard states queued right behind it as one metadata write of the
     * newest (a candidate on a slow disk bumps its term again while the previous bump is still
     * being written): each call resolves once a state at least as new as its own is durable,
     * which is what the sequential writes would have left. Only states with non-decreasing
     * terms are merged (raft never lowers its term; anything else is written one by one).
     */
    private async writeHardStates(first: Extract<Op, { kind: 'hardState' }>): Promise<void> {
        const taken = [first];
        for (let next = this.queue[0]; next?.kind === 'hardState'; next = this.queue[0]) {
            if (next.hardState.term < (taken[taken.length - 1] as typeof first).hardState.term) break;
            taken.push(next);
            this.queue.shift();
        }
        const newest = (taken[taken.length - 1] as typeof first).hardState;
        try {
            this.metadata = await writeMetadata(this.fs, this.dir, this.metadata, this.metadataPresent, newest);
            for (const op of taken) op.done.resolve();
        } catch (error) {
            const failure = this.guard.fail(error);
            for (const op of taken) op.done.tryReject(failure);
        }
    }

    /** Takes the queued appends/truncation at the head and writes them as one batch. */
    private async writeBatch(): Promise<void> {
        const head = this.queue[0] as Op;
        const taken: Op[] = [];
        const entries: Entry[] = [];
        let firstIndex: number;
        let truncates = false;
        if (head.kind === 'truncate') {
            this.queue.shift();
            taken.push(head);
            firstIndex = head.from;
            truncates = head.from <= this.lastIndex;
        } else {
            firstIndex = (head as Extract<Op, { kind: 'append' }>).entries[0]?.index as number;
        }
        let bytes = 0;
        while (this.queue.length > 0) {
            const next = this.queue[0] as Op;
            if (next.kind !== 'append' || next.entries[0]?.index !== firstIndex + entries.length) break;
            const size = batchBytes(next.entries);
            if (entries.length > 0 && bytes + size > this.batchBytesMax) break;
            this.queue.shift();
            taken.push(next);
            entries.push(...next.entries);
            bytes += size;
        }
        try {
            if (entries.length > 0 || truncates) await this.writeAndSync(firstIndex, entries);
            for (const op of taken) (op.done as Deferred<void>).resolve();
        } catch (error) {
            const failure = this.guard.fail(error);
            for (const op of taken) op.done.tryReject(failure);
        }
    }

    private async writeAndSync(firstIndex: number, entries: readonly Entry[]): Promise<void> {
        const bytes = encodeBatch(firstIndex, entries, this.scratchFor(batchBytes(entries)));
        let open = this.open;
        if (open !== undefined && open.segment.batches > 0 && open.segment.endOffset + bytes.length > open.capacity) {
            await this.closeOpenSegment();
            open = undefined;
        }
        open ??= await this.openNewSegment();
        const offset = open.segment.endOffset;
        // Pair assertion (STYLE.md §7.5.11), header only: a full re-check of the data CRC would
        // double the CPU cost per batch; load and read() verify everything they read back.
        assert(parseBatchHeaderOk(bytes, firstIndex, entries.length), 'encoded batch header does not check');
        if (hasDurableWrite(open.file)) {
            // One thread-pool call (an O_DSYNC write) instead of two, with the guarantee of
            // fdatasync for the bytes written. That is all fdatasync would add here: the open
            // segment holds no other unsynced write (its preallocation was synced before it
            // became current, and every batch is durable before the next one is written).
            await open.file.writeDurable(offset, bytes);
        } else {
            await open.file.write(offset, bytes);
            await open.file.datasync();
        }
        // Durable: update the index.
        open.segment.addBatch(firstIndex, entries.length, bytes.length);
        this.lastBatchSeq = open.segment.seq;
        if (firstIndex <= this.lastIndex) this.locs.length = Math.max(0, firstIndex - this.base);
        let payload = 32 + entries.length * 16;
        for (const e of entries) {
            if (e.index >= this.base) {
                assert(e.index === this.base + this.locs.length, 'index out of step');
                this.locs.push({
                    segment: open.segment, batchOffset: offset, batchBytes: bytes.length, payloadOffset: payload,
                    length: e.data.length, term: e.term, type: e.type,
                });
            }
            payload += (e.data.length + 7) & ~7;
        }
    }

    private scratchFor(bytes: number): Buffer | undefined {
        if (bytes > SCRATCH_BYTES_MAX) return undefined;
        if (this.scratch === undefined || this.scratch.length < bytes) {
            let size = 64 * 1024;
            while (size < bytes) size *= 2;
            this.scratch = Buffer.allocUnsafeSlow(Math.min(size, SCRATCH_BYTES_MAX));
        }
        return this.scratch;
    }

    /**
     * Makes the next open segment current and starts preparing the one after it in the
     * background (dqlite does the same), so a rollover never waits for preallocation.
     */
    private async openNewSegment(): Promise<OpenSegment> {
        const next = this.prepared ?? this.prepareSegment();
        this.prepared = undefined;
        const open = await next;
        this.segments.set(open.segment.seq, open.segment);
        this.open = open;
        if (this.guard.failure === undefined && !this.guard.lifecycle.isStopping) {
            const p = this.prepareSegment();
            // A failure is recorded by the guard (the store fails); whoever takes `prepared` sees it.
            p.catch(() => undefined);
            this.prepared = p;
        }
        return open;
    }

    /** Creates `open-<seq>`: header and zeros up to segmentBytes, synced, directory synced. */
    private async prepareSegment(): Promise<OpenSegment> {
        const seq = this.nextSeq++;
        const name = openSegmentName(seq);
        const path = joinPath(this.dir, name);
        const file = await this.fs.open(path, 'create');
        try {
            await file.write(0, encodeSegmentHeader(seq));
            // Preallocate with real zeros so later fdatasyncs need not allocate blocks, and so
            // the space past the last batch reads as zeros (the torn-tail rule relies on it).
            for (let at = SEGMENT_HEADER_BYTES; at < this.segmentBytes; at += ZERO_CHUNK_BYTES) {
                await file.write(at, ZEROS.subarray(0, Math.min(ZERO_CHUNK_BYTES, this.segmentBytes - at)));
            }
            await file.datasync();
            // The new directory entry must be durable before any acknowledged batch lives in it.
            await this.fs.fsyncDir(this.dir);
        } catch (error) {
            await file.close();
            throw error;
        }
        return { segment: new Segment(seq, name, true), file, capacity: this.segmentBytes };
    }

    /**
     * Turns the open segment into a closed one: cut to its used size, sync, rename to
     * `first-last`. No directory fsync is needed: if the rename is lost in a crash, load finds
     * `open-<seq>` with the same batches and closes it again.
     */
    private async closeOpenSegment(): Promise<void> {
        const open = this.open;
        assert(open !== undefined);
        this.open = undefined;
        const segment = open.segment;
        try {
            await open.file.truncate(segment.endOffset);
            await open.file.datasync();
        } finally {
            await open.file.close();
        }
        await this.renameClosed(segment);
    }

    private async renameClosed(segment: Segment): Promise<void> {
        const name = segment.closedName();
        const replaced = [...this.segments.values()].find((s) => s !== segment && s.name === name);
        if (replaced !== undefined) {
            // Same range: every entry of the older file was replaced by this one (a truncation
            // at its first index), so the rename may overwrite it.
            assert(!this.locs.some((l) => l.segment === replaced), 'replacing a segment that holds live entries');
            this.segments.delete(replaced.seq);
        }
        await this.fs.rename(joinPath(this.dir, segment.name), joinPath(this.dir, name));
        segment.name = name;
        segment.isOpen = false;
    }

    private async compact(upTo: LogIndex): Promise<void> {
        if (upTo >= this.base) {
            const drop = Math.min(this.locs.length, upTo - this.base + 1);
            this.locs.splice(0, drop);
            this.base = upTo + 1;
        }
        const live = new Set<Segment>();
        for (const l of this.locs) live.add(l.segment);
        for (const s of [...this.segments.values()].sort((a, b) => a.seq - b.seq)) {
            if (s.isOpen || live.has(s) || s.seq === this.lastBatchSeq) continue;
            // Deleting needs no directory fsync: a file that comes back after a crash holds only
            // entries at or below the snapshot and is deleted again by the next load.
            await this.fs.unlink(joinPath(this.dir, s.name));
            this.segments.delete(s.seq);
        }
    }

    private async readEntries(lo: LogIndex, hi: LogIndex): Promise<Entry[]> {
        assert(lo >= this.base && hi <= this.lastIndex + 1,
            `read [${lo}, ${hi}) outside [${this.base}, ${this.lastIndex}]`);
        const out: Entry[] = [];
        let i = lo;
        while (i < hi) {
            const loc = this.locs[i - this.base] as Loc;
            const seg = loc.segment;
            const useOpen = this.open !== undefined && this.open.segment === seg;
            const file = useOpen
                ? (this.open as OpenSegment).file
                : await this.fs.open(joinPath(this.dir, seg.name), 'read');
            try {
                const bytes = await file.read(loc.batchOffset, loc.batchBytes);
                const parsed = parseBatch(bytes, 0, bytes.length);
                if (parsed.kind !== 'ok' || parsed.bytes !== loc.batchBytes) {
                    throw new StorageError(`segment ${seg.name}: batch at ${loc.batchOffset} fails its checksum`,
                        'ERR_STORAGE_CORRUPT');
                }
                // Every wanted entry of this batch.
                while (i < hi) {
                    const l = this.locs[i - this.base] as Loc;
                    if (l.segment !== seg || l.batchOffset !== loc.batchOffset) break;
                    out.push({ index: i, term: l.term, type: l.type,
                        data: payloadOf(bytes, 0, l) });
                    i++;
                }
            } finally {
                if (!useOpen) await file.close();
            }
        }
        return out;
    }

    private rejectQueued(error: StorageError): void {
        const queued = this.queue;
        this.queue = [];
        for (const op of queued) op.done.tryReject(error);
    }
}

function entryFromLoc(dataOf: ReadonlyMap<Segment, Uint8Array>, loc: Loc, index: number): Entry {
    const data = dataOf.get(loc.segment) as Uint8Array;
    return { index, term: loc.term, type: loc.type, data: payloadOf(data, loc.batchOffset, loc) };
}

/** Creates the directory when missing, with a fsync of its parent so the creation is durable. */
async function ensureDir(raw: FileSystem, fs: FileSystem, dir: string): Promise<void> {
    try {
        const s = await raw.stat(dir);
        if (!s.isDirectory) throw new StorageError(`${dir} is not a directory`, 'ERR_STORAGE');
        return;
    } catch (error) {
        if (!isNotFound(error)) throw error;
    }
    await fs.mkdir(dir);
    await fs.fsyncDir(parentPath(dir));
}

/**
 * Finishes what a crash interrupted, after validation: open segments are cut to their valid
 * length (dropping a torn tail), synced and renamed to their closed name; empty ones and
 * segments with no live entry (compaction leftovers) are deleted. Returns the segments kept.
 */
async function settleSegments(fs: FileSystem, dir: string, parsed: ParsedSegment[], locs: readonly Loc[],
    lastBatchSeq: number | undefined): Promise<Segment[]> {
    const live = new Set<Segment>();
    for (const l of locs) live.add(l.segment);
    const kept: Segment[] = [];
    const byName = new Map<string, Segment>();
    for (const p of [...parsed].sort((a, b) => a.segment.seq - b.segment.seq)) {
        const s = p.segment;
        const path = joinPath(dir, p.name);
        if (p.unwritten || s.batches === 0 || (!live.has(s) && s.seq !== lastBatchSeq)) {
            await fs.unlink(path);
            continue;
        }
        if (s.isOpen) {
            if (p.data.length !== s.endOffset) {
                const file = await fs.open(path, 'readWrite');
                try {
                    await file.truncate(s.endOffset);
                    await file.datasync();
                } finally {
                    await file.close();
                }
            }
            const name = s.closedName();
            const other = byName.get(name);
            if (other !== undefined) kept.splice(kept.indexOf(other), 1);
            await fs.rename(path, joinPath(dir, name));
            s.name = name;
            s.isOpen = false;
        }
        byName.set(s.name, s);
        kept.push(s);
    }
    return kept;
}

export { snapshotFileName };
