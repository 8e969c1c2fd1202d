// A deterministic, in-memory FileSystem that loses what a power cut would lose (TESTING.md §4.4).
//
// Model. Every file is an inode with a *durable* content (what survives a crash) and a
// *visible* content (what reads see). The namespace (path → inode or directory) likewise has a
// durable and a visible version. Every mutation is applied to the visible state at once and
// recorded as a *pending op*, in one global order:
//   - data ops: write(inode, offset, bytes), truncate(inode, size);
//   - metadata ops: link (file creation), rename, unlink, mkdir — each belongs to the
//     directory it changes (a rename across directories to both: it is durable once both were
//     fsynced). Renaming a directory moves everything under it.
// `datasync()`/`sync()` on a file moves its pending data ops into its durable content;
// `fsyncDir(dir)` moves that directory's pending metadata ops into the durable namespace.
// Nothing else is ever durable: a file fsynced but whose creation was not followed by an
// fsyncDir of its parent vanishes in a crash, as POSIX allows.
//
// O_DSYNC writes (option `durableWrites`; off by default). The files then offer
// `writeDurable(position, data)`, RealFs's one-call write + fdatasync (lib/real-fs.ts
// DurableWriter), so callers take the same path as on a real disk. What it guarantees is what
// POSIX's synchronized I/O *data* integrity completion gives a write through an O_DSYNC
// descriptor, and what Linux does (generic_write_sync: an fdatasync of the written range only):
// when the call resolves, the bytes it wrote are durable, and so is the file size needed to read
// them (a write past the end grows the durable size). Nothing else: other pending writes and
// truncations of the file stay pending, and neither is the file's directory entry (a new file
// still needs fsyncDir). Not modelled: a journaling file system commits the inode as a whole, so
// the size set by another pending write or truncation may become durable along with it, without
// that op's data (a file grown with zeros, or cut); the log has no other pending op on a file it
// writes this way (a segment is preallocated and synced first). The call is two operations, each
// an op boundary: 'writeDurable' puts the data in the page cache as a pending write (a crash from
// then until the call resolves may drop it or keep any subset of its sectors, like any pending
// write), and 'writeDurableSync', a sync point, makes it durable. A fault on 'writeDurable' fails
// the call before anything was written (ENOSPC, EIO); one on 'writeDurableSync' fails it after the
// data reached the page cache, where it stays pending. Like RealFs's second descriptor, the first
// call binds to the file its path names then. A write made durable while an earlier op of its file
// is still pending stays in the pending list, marked `durable`: every crash image applies it, in
// its place in the order, so the earlier op (if kept) cannot overwrite it. `durableWrites` is kept
// in checkpoints and crash images.
//
// Crash images. `checkpoint()` captures durable state + pending ops cheaply (durable contents
// are immutable and shared). `SimFs.fromCheckpoint(cp, plan)` builds the file system a crash at
// that moment leaves: the plan decides, for each pending op, whether it reached the disk
// ('apply'), did not ('drop'), or reached it in part (a list saying which of the sectors it
// touches were written: a torn write at sector granularity; sectors not written keep their old
// content). Choosing any subset of pending ops models reordering: a later write may persist
// while an earlier one is lost. Ops are applied in their original order; a metadata op whose
// precondition no longer holds (rename of a name that is not there) is skipped. Entries whose
// parent directory did not survive are removed.
//
// For crash-consistency tests: set `onOp` to take a checkpoint after every operation (each is
// an op boundary; `isSyncPoint` marks fsync/fdatasync/fsyncDir and the completion of an
// O_DSYNC write), then build images from each checkpoint with the plans in `crashPlans`.
//
// Faults. `injectFault()` makes the Nth matching operation fail with EIO or ENOSPC (once, or
// persistently from then on); `flipBit()` changes one bit of a file's durable and visible
// content (corruption of synced data). `crash()` turns this instance into a dead one (every
// later call rejects with ECRASHED) and returns the survivor image.
//
// Everything is synchronous underneath and settles in microtasks, so a run is a pure function
// of the calls made (and of the seed used by random plans).

import { assert } from './assert.js';
import type { FileStat, FileSystem, FsFile, OpenMode } from './fs.js';
import { FsError, parentPath } from './fs.js';
import type { SeededRandom } from './random.js';

export type SimOpKind =
    | 'open' | 'read' | 'write' | 'append' | 'truncate' | 'datasync' | 'sync' | 'size'
    | 'readFile' | 'rename' | 'unlink' | 'mkdir' | 'readdir' | 'stat' | 'fsyncDir'
    /** The two halves of one writeDurable call (see "O_DSYNC writes" above). */
    | 'writeDurable' | 'writeDurableSync';

export const SYNC_KINDS: readonly SimOpKind[] = ['datasync', 'sync', 'fsyncDir', 'writeDurableSync'];

/**
 * A SimFs file's writeDurable (present when the SimFs has `durableWrites`). `wait`, when given,
 * runs between the two halves: the call is durable only after the promise it returns resolved
 * (the raft simulator puts a simulated device latency there).
 */
export type SimWriteDurable = (position: number, data: Uint8Array, wait?: () => Promise<void> | undefined)
    => Promise<void>;

/** A pending (unsynced) operation. Immutable once recorded. */
export type PendingOp =
    | { readonly kind: 'write'; readonly inode: number; readonly path: string; readonly offset: number;
        readonly data: Uint8Array; readonly sectors: number;
        /** Made durable by writeDurable while an earlier op of its file was pending: always applied. */
        readonly durable?: true }
    | { readonly kind: 'truncate'; readonly inode: number; readonly path: string; readonly size: number }
    | { readonly kind: 'link'; readonly dir: string; readonly path: string; readonly inode: number }
    /** `inode` is -1 for a directory (which moves with everything under it). `toDir` is the
     *  destination's parent: a rename across directories is durable once both are fsynced. */
    | { readonly kind: 'rename'; readonly dir: string; readonly toDir: string; readonly from: string;
        readonly to: string; readonly inode: number }
    | { readonly kind: 'unlink'; readonly dir: string; readonly path: string; readonly inode: number }
    | { readonly kind: 'mkdir'; readonly dir: string; readonly path: string };

/** What a crash does to one pending op: persisted, lost, or (writes only) torn per sector. */
export type OpFate = 'apply' | 'drop' | readonly boolean[];
export type CrashPlan = (op: PendingOp, position: number, all: readonly PendingOp[]) => OpFate;

type Entry = { readonly kind: 'file'; readonly inode: number } | { readonly kind: 'dir' };

/** Durable state plus pending ops at one instant. Shares immutable buffers with its source. */
export interface SimCheckpoint {
    readonly durableNames: ReadonlyMap<string, Entry>;
    readonly durableData: ReadonlyMap<number, Uint8Array>;
    readonly pending: readonly PendingOp[];
    readonly nextInode: number;
    readonly sectorBytes: number;
    readonly durableWrites: boolean;
}

export interface SimOpEvent {
    /** Counts every call on this instance, from 0. */
    readonly index: number;
    readonly kind: SimOpKind;
    readonly path: string;
    readonly isSyncPoint: boolean;
}

export interface SimFault {
    /** Fail the `at`-th (0-based) call whose kind is in `kinds` (default: every kind). */
    readonly at: number;
    readonly kinds?: readonly SimOpKind[];
    readonly code?: 'EIO' | 'ENOSPC';
    /** Keep failing every later matching call too. */
    readonly persistent?: boolean;
}

export interface SimFsOptions {
    /** Torn-write granularity. Default 512. */
    readonly sectorBytes?: number;
    /** Directories that exist (durably) from the start, e.g. ['/data']. '/' and '.' always do. */
    readonly dirs?: readonly string[];
    /** Files offer writeDurable, an O_DSYNC write (see "O_DSYNC writes" above). Default false. */
    readonly durableWrites?: boolean;
    /**
     * The device latency of a writeDurable called without a `wait` of its own: runs between its
     * two halves (e.g. one event-loop turn, so that whatever runs meanwhile sees the write in
     * flight). Default none: the halves follow each other in microtasks. Not kept in crash images.
     */
    readonly durableWriteWait?: () => Promise<void> | undefined;
}

class Content {
    bytes: Uint8Array;
    size: number;
    /** An immutable copy of the current bytes, kept until the next change (checkpoints share it). */
    private frozen: Uint8Array | undefined;
    constructor(initial: Uint8Array) {
        this.bytes = new Uint8Array(Math.max(64, initial.length));
        this.bytes.set(initial);
        this.size = initial.length;
    }
    ensure(size: number): void {
        if (size <= this.bytes.length) return;
        const next = new Uint8Array(Math.max(size, this.bytes.length * 2));
        next.set(this.bytes.subarray(0, this.size));
        this.bytes = next;
    }
    write(offset: number, data: Uint8Array): void {
        this.frozen = undefined;
        this.ensure(offset + data.length);
        if (offset > this.size) this.bytes.fill(0, this.size, offset);
        this.bytes.set(data, offset);
        this.size = Math.max(this.size, offset + data.length);
    }
    truncate(size: number): void {
        this.frozen = undefined;
        if (size > this.size) {
            this.ensure(size);
            this.bytes.fill(0, this.size, size);
        }
        this.size = size;
    }
    snapshot(): Uint8Array {
        return this.bytes.slice(0, this.size);
    }
    /** The current bytes as an immutable array (a copy made once per change, then shared). */
    freeze(): Uint8Array {
        this.frozen ??= this.snapshot();
        return this.frozen;
    }
    flip(byte: number, mask: number): void {
        this.frozen = undefined;
        this.bytes[byte] = (this.bytes[byte] as number) ^ mask;
    }
}

/** Applies data ops that all reach the disk, in place. */
function applyDataInPlace(c: Content, ops: readonly PendingOp[]): void {
    for (const op of ops) {
        if (op.kind === 'truncate') c.truncate(op.size);
        else if (op.kind === 'write') c.write(op.offset, op.data);
    }
}

function applyData(base: Uint8Array, ops: readonly PendingOp[], fates: readonly OpFate[] | undefined,
    sectorBytes: number): Uint8Array {
    const c = new Content(base);
    ops.forEach((op, i) => {
        const fate = fates === undefined ? 'apply' : (fates[i] as OpFate);
        if (fate === 'drop') return;
        if (op.kind === 'truncate') {
            c.truncate(op.size);
        } else if (op.kind === 'write') {
            if (fate === 'apply') {
                c.write(op.offset, op.data);
                return;
            }
            const first = Math.floor(op.offset / sectorBytes);
            fate.forEach((written, s) => {
                if (!written) return;
                const lo = Math.max(op.offset, (first + s) * sectorBytes);
                const hi = Math.min(op.offset + op.data.length, (first + s + 1) * sectorBytes);
                if (hi > lo) c.write(lo, op.data.subarray(lo - op.offset, hi - op.offset));
            });
        }
    });
    return c.snapshot();
}

function applyMeta(names: Map<string, Entry>, op: PendingOp): void {
    switch (op.kind) {
        case 'link':
            names.set(op.path, { kind: 'file', inode: op.inode });
            return;
        case 'mkdir':
            names.set(op.path, { kind: 'dir' });
            return;
        case 'rename': {
            const e = names.get(op.from);
            if (e === undefined) return;
            if (op.inode >= 0) {
                if (e.kind !== 'file' || e.inode !== op.inode) return;
                names.delete(op.from);
                names.set(op.to, e);
                return;
            }
            if (e.kind !== 'dir' || names.has(op.to)) return;
            moveTree(names, op.from, op.to);
            return;
        }
        case 'unlink': {
            const e = names.get(op.path);
            if (e !== undefined && e.kind === 'file' && e.inode === op.inode) names.delete(op.path);
            return;
        }
        default:
            return;
    }
}

/** Moves a directory entry and everything under it. */
function moveTree<V>(names: Map<string, V>, from: string, to: string): void {
    const prefix = from.endsWith('/') ? from : `${from}/`;
    for (const [path, e] of [...names]) {
        if (path === from || path.startsWith(prefix)) {
            names.delete(path);
            names.set(to + path.slice(from.length), e);
        }
    }
}

function isMeta(op: PendingOp): op is Extract<PendingOp, { dir: string }> {
    return op.kind === 'link' || op.kind === 'rename' || op.kind === 'unlink' || op.kind === 'mkdir';
}

function sectorsTouched(offset: number, length: number, sectorBytes: number): number {
    if (length === 0) return 0;
    return Math.floor((offset + length - 1) / sectorBytes) - Math.floor(offset / sectorBytes) + 1;
}

function isRoot(path: string): boolean {
    return path === '/' || path === '.' || path === '';
}

class SimFile implements FsFile {
    closed = false;
    /** Present only when the SimFs has `durableWrites` (callers test for it: real-fs.ts hasDurableWrite). */
    readonly writeDurable: SimWriteDurable | undefined;
    /** The inode the "O_DSYNC descriptor" writes to, bound by the first writeDurable. */
    private dsyncInode: number | undefined;

    constructor(private readonly fs: SimFs, readonly path: string, readonly inode: number,
        readonly writable: boolean) {
        this.writeDurable = fs.durableWrites ? (position, data, wait) => this.durable(position, data, wait) : undefined;
    }

    read(position: number, length: number): Promise<Uint8Array> {
        return this.fs.run('read', this.path, () => {
            this.check();
            const c = this.fs.content(this.inode);
            const end = Math.min(c.size, position + length);
            return end <= position ? new Uint8Array(0) : c.bytes.slice(position, end);
        });
    }
    write(position: number, data: Uint8Array): Promise<void> {
        return this.fs.run('write', this.path, () => {
            this.checkWritable();
            this.fs.recordWrite(this.inode, this.path, position, data);
        });
    }
    append(data: Uint8Array): Promise<void> {
        return this.fs.run('append', this.path, () => {
            this.checkWritable();
            this.fs.recordWrite(this.inode, this.path, this.fs.content(this.inode).size, data);
        });
    }
    truncate(size: number): Promise<void> {
        return this.fs.run('truncate', this.path, () => {
            this.checkWritable();
            this.fs.recordTruncate(this.inode, this.path, size);
        });
    }
    datasync(): Promise<void> {
        return this.fs.run('datasync', this.path, () => {
            this.check();
            this.fs.syncInode(this.inode);
        });
    }
    sync(): Promise<void> {
        return this.fs.run('sync', this.path, () => {
            this.check();
            this.fs.syncInode(this.inode);
        });
    }
    size(): Promise<number> {
        return this.fs.run('size', this.path, () => {
            this.check();
            return this.fs.content(this.inode).size;
        });
    }
    /**
     * RealFile.writeDurable: a write through a second descriptor opened with O_DSYNC by path at
     * the first call (so it works on a read-only handle too, and binds to whatever file the path
     * names then). The completion half runs even if the handle was closed meanwhile (the kernel
     * finishes a write in flight); after a crash it rejects like every call of a dead SimFs.
     */
    private durable(position: number, data: Uint8Array, wait: (() => Promise<void> | undefined) | undefined):
        Promise<void> {
        let op: PendingOp | undefined;
        const started = this.fs.run('writeDurable', this.path, () => {
            this.check();
            this.dsyncInode ??= this.fs.fileInode(this.path, 'open');
            op = this.fs.recordWrite(this.dsyncInode, this.path, position, data);
        });
        const finish = (): Promise<void> => this.fs.run('writeDurableSync', this.path, () => {
            if (op !== undefined) this.fs.makeDurable(op);
        });
        const delay = wait ?? this.fs.durableWriteWait;
        if (delay === undefined) return started.then(finish);
        return started.then(delay).then(finish);
    }
    close(): Promise<void> {
        this.closed = true;
        this.fs.openHandles.delete(this);
        return Promise.resolve();
    }
    private check(): void {
        if (this.closed) throw new FsError('EBADF', 'use', this.path);
    }
    private checkWritable(): void {
        this.check();
        if (!this.writable) throw new FsError('EBADF', 'write', this.path);
    }
}

export class SimFs implements FileSystem {
    readonly sectorBytes: number;
    /** Files offer writeDurable (an O_DSYNC write). */
    readonly durableWrites: boolean;
    readonly durableWriteWait: (() => Promise<void> | undefined) | undefined;
    /** Called after every successful operation took effect (synchronously, before it settles). */
    onOp: ((event: SimOpEvent) => void) | undefined;
    /** Set when the op was refused because of an injected fault (the first one). */
    faultFired: SimOpEvent | undefined;
    readonly openHandles = new Set<SimFile>();

    private durableNames = new Map<string, Entry>();
    /** Durable file contents, changed in place by syncs (checkpoints take frozen copies). */
    private durableData = new Map<number, Content>();
    private names = new Map<string, Entry>();
    private contents = new Map<number, Content>();
    private pending: PendingOp[] = [];
    /** Cross-directory renames whose one side was fsynced already. */
    private readonly halfSynced = new Map<PendingOp, Set<string>>();
    private nextInode = 1;
    private opIndex = 0;
    private dead = false;
    private faults: { fault: SimFault; seen: number; fired: boolean }[] = [];

    constructor(options: SimFsOptions = {}) {
        this.sectorBytes = options.sectorBytes ?? 512;
        this.durableWrites = options.durableWrites ?? false;
        this.durableWriteWait = options.durableWriteWait;
        assert(this.sectorBytes > 0 && Number.isInteger(this.sectorBytes));
        for (const dir of options.dirs ?? []) {
            let p = dir;
            const chain: string[] = [];
            while (!isRoot(p)) {
                chain.push(p);
                p = parentPath(p);
            }
            for (const d of chain.reverse()) {
                this.durableNames.set(d, { kind: 'dir' });
                this.names.set(d, { kind: 'dir' });
            }
        }
    }

    // ---- crash images -------------------------------------------------------------------

    checkpoint(): SimCheckpoint {
        return {
            durableNames: new Map(this.durableNames),
            durableData: new Map([...this.durableData].map(([inode, c]) => [inode, c.freeze()] as const)),
            pending: this.pending.slice(),
            nextInode: this.nextInode,
            sectorBytes: this.sectorBytes,
            durableWrites: this.durableWrites,
        };
    }

    /** The pending (unsynced) operations, oldest first. */
    pendingOps(): readonly PendingOp[] {
        return this.pending.slice();
    }

    /** The file system a crash at `cp` leaves, with `plan` choosing each pending op's fate. */
    static fromCheckpoint(cp: SimCheckpoint, plan: CrashPlan): SimFs {
        const fates = cp.pending.map((op, i) => {
            const fate = plan(op, i, cp.pending);
            return op.kind === 'write' && op.durable === true ? 'apply' : fate;
        });
        const names = new Map(cp.durableNames);
        const data = new Map(cp.durableData);
        const dataOps = new Map<number, { ops: PendingOp[]; fates: OpFate[] }>();
        cp.pending.forEach((op, i) => {
            const fate = fates[i] as OpFate;
            if (isMeta(op)) {
                if (fate !== 'drop') applyMeta(names, op);
                return;
            }
            let list = dataOps.get(op.inode);
            if (list === undefined) dataOps.set(op.inode, (list = { ops: [], fates: [] }));
            list.ops.push(op);
            list.fates.push(fate);
        });
        for (const [inode, { ops, fates: f }] of dataOps) {
            data.set(inode, applyData(data.get(inode) ?? new Uint8Array(0), ops, f, cp.sectorBytes));
        }
        // Entries whose parent directory did not survive are gone too.
        let changed = true;
        while (changed) {
            changed = false;
            for (const path of names.keys()) {
                const parent = parentPath(path);
                if (!isRoot(parent) && names.get(parent)?.kind !== 'dir') {
                    names.delete(path);
                    changed = true;
                }
            }
        }
        const fs = new SimFs({ sectorBytes: cp.sectorBytes, durableWrites: cp.durableWrites });
        fs.nextInode = cp.nextInode;
        for (const [path, e] of names) {
            fs.durableNames.set(path, e);
            fs.names.set(path, e);
            if (e.kind === 'file') {
                const bytes = data.get(e.inode) ?? new Uint8Array(0);
                fs.durableData.set(e.inode, new Content(bytes));
            }
        }
        return fs;
    }

    /** A crash image of the current state; this instance is unaffected. */
    crashImage(plan: CrashPlan): SimFs {
        return SimFs.fromCheckpoint(this.checkpoint(), plan);
    }

    /** Power cut: this instance dies (every later call rejects with ECRASHED); returns the survivor. */
    crash(plan: CrashPlan): SimFs {
        const image = this.crashImage(plan);
        this.dead = true;
        return image;
    }

    // ---- faults ---------------------------------------------------------------------------

    injectFault(fault: SimFault): void {
        this.faults.push({ fault, seen: 0, fired: false });
    }

    clearFaults(): void {
        this.faults = [];
    }

    /** Flips one bit of a file's content, durable and visible: corruption of synced data. */
    flipBit(path: string, bit: number): void {
        const e = this.names.get(path);
        assert(e !== undefined && e.kind === 'file', `flipBit: no file ${path}`);
        const c = this.content(e.inode);
        const byte = Math.floor(bit / 8);
        assert(byte < c.size, 'flipBit past the end');
        c.flip(byte, 1 << (bit % 8));
        const durable = this.durableData.get(e.inode);
        if (durable !== undefined && byte < durable.size) durable.flip(byte, 1 << (bit % 8));
    }

    /** Names of all files (not directories) in the visible namespace, sorted. */
    listFiles(): string[] {
        return [...this.names].filter(([, e]) => e.kind === 'file').map(([p]) => p).sort();
    }

    /** A file's visible bytes (a copy), for tests. */
    peek(path: string): Uint8Array {
        const e = this.names.get(path);
        assert(e !== undefined && e.kind === 'file', `peek: no file ${path}`);
        return this.content(e.inode).snapshot();
    }

    get operationCount(): number {
        return this.opIndex;
    }

    // ---- FileSystem -----------------------------------------------------------------------

    open(path: string, mode: OpenMode): Promise<FsFile> {
        return this.run('open', path, () => {
            const e = this.names.get(path);
            if (e?.kind === 'dir') throw new FsError('EISDIR', 'open', path);
            let inode: number;
            if (e === undefined) {
                if (mode === 'read' || mode === 'readWrite') throw new FsError('ENOENT', 'open', path);
                this.requireDir(parentPath(path), 'open', path);
                inode = this.nextInode++;
                this.contents.set(inode, new Content(new Uint8Array(0)));
                this.durableData.set(inode, new Content(new Uint8Array(0)));
                this.names.set(path, { kind: 'file', inode });
                this.pending.push({ kind: 'link', dir: parentPath(path), path, inode });
            } else {
                if (mode === 'create') throw new FsError('EEXIST', 'open', path);
                inode = e.inode;
                if (mode === 'replace') this.recordTruncate(inode, path, 0);
            }
            const file = new SimFile(this, path, inode, mode !== 'read');
            this.openHandles.add(file);
            return file;
        });
    }

    readFile(path: string): Promise<Uint8Array> {
        return this.run('readFile', path, () => this.content(this.fileInode(path, 'readFile')).snapshot());
    }

    rename(from: string, to: string): Promise<void> {
        return this.run('rename', from, () => {
            const e = this.names.get(from);
            if (e === undefined || isRoot(from)) throw new FsError('ENOENT', 'rename', from);
            this.requireDir(parentPath(to), 'rename', to);
            const target = this.names.get(to);
            const dir = parentPath(from);
            const toDir = parentPath(to);
            if (e.kind === 'file') {
                if (target?.kind === 'dir') throw new FsError('EISDIR', 'rename', to);
                this.names.delete(from);
                this.names.set(to, e);
                this.pending.push({ kind: 'rename', dir, toDir, from, to, inode: e.inode });
                return;
            }
            // A directory: only onto a missing name (no replacing of directories), never into itself.
            if (target !== undefined) throw new FsError('ENOTEMPTY', 'rename', to);
            if (to.startsWith(`${from}/`)) throw new FsError('EINVAL', 'rename', to);
            moveTree(this.names, from, to);
            this.pending.push({ kind: 'rename', dir, toDir, from, to, inode: -1 });
        });
    }

    unlink(path: string): Promise<void> {
        return this.run('unlink', path, () => {
            const inode = this.fileInode(path, 'unlink');
            this.names.delete(path);
            this.pending.push({ kind: 'unlink', dir: parentPath(path), path, inode });
        });
    }

    mkdir(path: string): Promise<void> {
        return this.run('mkdir', path, () => {
            if (this.names.has(path) || isRoot(path)) throw new FsError('EEXIST', 'mkdir', path);
            this.requireDir(parentPath(path), 'mkdir', path);
            this.names.set(path, { kind: 'dir' });
            this.pending.push({ kind: 'mkdir', dir: parentPath(path), path });
        });
    }

    readdir(path: string): Promise<string[]> {
        return this.run('readdir', path, () => {
            this.requireDir(path, 'readdir', path);
            const out: string[] = [];
            for (const name of this.names.keys()) {
                if (name !== path && parentPath(name) === path) out.push(name.slice(name.lastIndexOf('/') + 1));
            }
            return out.sort();
        });
    }

    stat(path: string): Promise<FileStat> {
        return this.run('stat', path, () => {
            if (isRoot(path)) return { size: 0, isDirectory: true };
            const e = this.names.get(path);
            if (e === undefined) throw new FsError('ENOENT', 'stat', path);
            if (e.kind === 'dir') return { size: 0, isDirectory: true };
            return { size: this.content(e.inode).size, isDirectory: false };
        });
    }

    fsyncDir(path: string): Promise<void> {
        return this.run('fsyncDir', path, () => {
            this.requireDir(path, 'fsyncDir', path);
            const keep: PendingOp[] = [];
            for (const op of this.pending) {
                if (!isMeta(op)) {
                    keep.push(op);
                    continue;
                }
                const sides = op.kind === 'rename' && op.toDir !== op.dir ? [op.dir, op.toDir] : [op.dir];
                if (!sides.includes(path)) {
                    keep.push(op);
                    continue;
                }
                const synced = this.halfSynced.get(op) ?? new Set<string>();
                synced.add(path);
                if (sides.every((d) => synced.has(d))) {
                    applyMeta(this.durableNames, op);
                    this.halfSynced.delete(op);
                } else {
                    this.halfSynced.set(op, synced);
                    keep.push(op);
                }
            }
            this.pending = keep;
        });
    }

    // ---- internals used by SimFile ----------------------------------------------------------

    /** Runs one operation: fault check, effect, hook; settles in a microtask. */
    run<T>(kind: SimOpKind, path: string, effect: () => T): Promise<T> {
        const index = this.opIndex++;
        // The event only when someone looks at it (the raft simulator runs millions of ops).
        const event: SimOpEvent | undefined = this.faults.length > 0 || this.onOp !== undefined
            ? { index, kind, path, isSyncPoint: SYNC_KINDS.includes(kind) }
            : undefined;
        try {
            if (this.dead) throw new FsError('ECRASHED', kind, path);
            if (event !== undefined) this.maybeFault(event);
            const value = effect();
            if (event !== undefined) this.onOp?.(event);
            return Promise.resolve(value);
        } catch (error) {
            return Promise.reject(error);
        }
    }

    content(inode: number): Content {
        let c = this.contents.get(inode);
        if (c === undefined) {
            c = new Content(this.durableData.get(inode)?.freeze() ?? new Uint8Array(0));
            this.contents.set(inode, c);
        }
        return c;
    }

    /** Records a pending write (none for no bytes) and returns it. */
    recordWrite(inode: number, path: string, offset: number, data: Uint8Array): PendingOp | undefined {
        assert(Number.isInteger(offset) && offset >= 0, 'bad write offset');
        if (data.length === 0) return undefined;
        const copy = new Uint8Array(data); // a copy even for a Buffer (whose slice() is a view)
        this.content(inode).write(offset, copy);
        const op: PendingOp = { kind: 'write', inode, path, offset, data: copy,
            sectors: sectorsTouched(offset, copy.length, this.sectorBytes) };
        this.pending.push(op);
        return op;
    }

    /**
     * The completion of an O_DSYNC write: `op` (still pending unless a datasync of its file
     * took it meanwhile) becomes durable, and nothing else. With no earlier pending op of its
     * file it moves into the durable content (growing the durable size if it wrote past it);
     * otherwise it stays in place, marked durable, so crash images apply it after those.
     */
    makeDurable(op: PendingOp): void {
        assert(op.kind === 'write');
        const at = this.pending.indexOf(op);
        if (at < 0) return;
        const earlier = this.pending.slice(0, at).some((o) => !isMeta(o) && o.inode === op.inode);
        if (earlier) {
            this.pending[at] = { ...op, durable: true };
            return;
        }
        let durable = this.durableData.get(op.inode);
        if (durable === undefined) this.durableData.set(op.inode, (durable = new Content(new Uint8Array(0))));
        durable.write(op.offset, op.data);
        this.pending.splice(at, 1);
    }

    recordTruncate(inode: number, path: string, size: number): void {
        assert(Number.isInteger(size) && size >= 0, 'bad truncate size');
        this.content(inode).truncate(size);
        this.pending.push({ kind: 'truncate', inode, path, size });
    }

    syncInode(inode: number): void {
        const mine: PendingOp[] = [];
        const keep: PendingOp[] = [];
        for (const op of this.pending) {
            if (!isMeta(op) && op.inode === inode) mine.push(op);
            else keep.push(op);
        }
        if (mine.length === 0) return;
        let durable = this.durableData.get(inode);
        if (durable === undefined) this.durableData.set(inode, (durable = new Content(new Uint8Array(0))));
        applyDataInPlace(durable, mine);
        this.pending = keep;
    }

    private maybeFault(event: SimOpEvent): void {
        for (const f of this.faults) {
            if (f.fault.kinds !== undefined && !f.fault.kinds.includes(event.kind)) continue;
            const n = f.seen++;
            if (n === f.fault.at || (f.fired && f.fault.persistent === true)) {
                f.fired = true;
                this.faultFired ??= event;
                throw new FsError(f.fault.code ?? 'EIO', event.kind, event.path);
            }
        }
    }

    /** The inode `path` names (internal: SimFile binds its O_DSYNC writes with it). */
    fileInode(path: string, syscall: string): number {
        const e = this.names.get(path);
        if (e === undefined) throw new FsError('ENOENT', syscall, path);
        if (e.kind === 'dir') throw new FsError('EISDIR', syscall, path);
        return e.inode;
    }

    private requireDir(path: string, syscall: string, subject: string): void {
        if (isRoot(path)) return;
        const e = this.names.get(path);
        if (e === undefined) throw new FsError('ENOENT', syscall, subject);
        if (e.kind !== 'dir') throw new FsError('ENOTDIR', syscall, subject);
    }
}

/** Ready-made crash plans. Each is a pure function of its arguments. */
export const crashPlans = {
    /** Only what was synced survives. */
    dropAll: (): CrashPlan => () => 'drop',
    /** Every pending op reached the disk (as a clean shutdown would leave it). */
    applyAll: (): CrashPlan => () => 'apply',
    /** Every pending op persisted except the one at `position`. */
    dropOnly: (position: number): CrashPlan => (_op, i) => (i === position ? 'drop' : 'apply'),
    /** Pending ops before `position` persisted, the rest lost (in-order persistence). */
    prefix: (position: number): CrashPlan => (_op, i) => (i < position ? 'apply' : 'drop'),
    /**
     * The write at `position` torn: its first `sectorsWritten` sectors persisted, the rest not;
     * ops before it persisted, ops after it lost.
     */
    tear: (position: number, sectorsWritten: number): CrashPlan => (op, i) => {
        if (i < position) return 'apply';
        if (i > position) return 'drop';
        if (op.kind !== 'write') return 'apply';
        return Array.from({ length: op.sectors }, (_, s) => s < sectorsWritten);
    },
    /**
     * Each pending op independently applied (probability pApply), dropped, or, for writes,
     * torn with a random subset of sectors (probability pTear).
     */
    random: (random: SeededRandom, pApply = 0.5, pTear = 0.2): CrashPlan => (op) => {
        if (op.kind === 'write' && op.sectors > 1 && random.chance(pTear)) {
            return Array.from({ length: op.sectors }, () => random.chance(0.5));
        }
        return random.chance(pApply) ? 'apply' : 'drop';
    },
};
