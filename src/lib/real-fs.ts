// The production FileSystem on node:fs/promises. Every call runs on libuv's thread pool, so
// nothing here blocks the event loop. Errors are Node's own (with `code` = errno name).

import { constants } from 'node:fs';
import { open as fsOpen, readdir, rename, stat, unlink, mkdir, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { FileStat, FileSystem, FsFile, OpenMode } from './fs.js';

/**
 * An optional capability of a file (RealFs's files have it; SimFs's and BufferedFs's do not):
 * `writeDurable` writes `data` at `position` and resolves once it is durable, as `write` then
 * `datasync` would, but in one thread-pool call (a write through a second handle opened with
 * O_DSYNC), which saves a round trip to the pool per call. Only the bytes written through it
 * are made durable. The file's path must still name it at the first call (the O_DSYNC
 * handle is opened then by path and kept until close). Callers without it write + datasync.
 */
export interface DurableWriter {
    writeDurable(position: number, data: Uint8Array): Promise<void>;
}

/** Whether `file` offers writeDurable (see DurableWriter). */
export function hasDurableWrite<F extends object>(file: F): file is F & DurableWriter {
    return typeof (file as Partial<DurableWriter>).writeDurable === 'function';
}

const FLAGS: Record<OpenMode, string> = {
    read: 'r',
    readWrite: 'r+',
    create: 'wx+',
    replace: 'w+',
};

class RealFile implements FsFile, DurableWriter {
    private closed = false;
    /** The O_DSYNC handle of writeDurable, opened by its first call. */
    private dsync: Promise<FileHandle> | undefined;

    constructor(readonly path: string, private readonly handle: FileHandle) {}

    async read(position: number, length: number): Promise<Uint8Array> {
        const out = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
            const { bytesRead } = await this.handle.read(out, done, length - done, position + done);
            if (bytesRead === 0) break;
            done += bytesRead;
        }
        return done === length ? out : out.subarray(0, done);
    }

    async write(position: number, data: Uint8Array): Promise<void> {
        let done = 0;
        while (done < data.length) {
            const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
            done += bytesWritten;
        }
    }

    async writeDurable(position: number, data: Uint8Array): Promise<void> {
        if (this.closed) throw Object.assign(new Error(`writeDurable after close: ${this.path}`), { code: 'EBADF' });
        this.dsync ??= fsOpen(this.path, constants.O_WRONLY | constants.O_DSYNC);
        const handle = await this.dsync;
        let done = 0;
        while (done < data.length) {
            const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
            done += bytesWritten;
        }
    }

    async append(data: Uint8Array): Promise<void> {
        await this.write(await this.size(), data);
    }

    async truncate(size: number): Promise<void> {
        await this.handle.truncate(size);
    }

    async datasync(): Promise<void> {
        await this.handle.datasync();
    }

    async sync(): Promise<void> {
        await this.handle.sync();
    }

    async size(): Promise<number> {
        return (await this.handle.stat()).size;
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        const dsync = this.dsync;
        this.dsync = undefined;
        try {
            if (dsync !== undefined) await (await dsync.catch(() => undefined))?.close();
        } finally {
            await this.handle.close();
        }
    }
}

export class RealFs implements FileSystem {
    async open(path: string, mode: OpenMode): Promise<FsFile> {
        return new RealFile(path, await fsOpen(path, FLAGS[mode]));
    }

    async readFile(path: string): Promise<Uint8Array> {
        return readFile(path);
    }

    async rename(from: string, to: string): Promise<void> {
        await rename(from, to);
    }

    async unlink(path: string): Promise<void> {
        await unlink(path);
    }

    async mkdir(path: string): Promise<void> {
        await mkdir(path);
    }

    async readdir(path: string): Promise<string[]> {
        return (await readdir(path)).sort();
    }

    async stat(path: string): Promise<FileStat> {
        const s = await stat(path);
        return { size: s.size, isDirectory: s.isDirectory() };
    }

    async fsyncDir(path: string): Promise<void> {
        const handle = await fsOpen(path, 'r');
        try {
            await handle.sync();
        } finally {
            await handle.close();
        }
    }
}

export const realFs: FileSystem = new RealFs();

// ---- nemesis mode --------------------------------------------------------------------------------

/** A write made by writeDurable is already on disk (`durable`): it stays an op only for reads. */
type BufferedOp =
    | { readonly kind: 'write'; readonly offset: number; readonly data: Uint8Array; readonly durable?: true }
    | { readonly kind: 'truncate'; readonly size: number };

interface BufferedFile {
    /** The file's size as the process sees it (the disk's plus buffered ops). */
    size: number;
    ops: BufferedOp[];
    /** writeDurable calls under way. */
    durableWrites: number;
}

/**
 * A FileSystem for real-process fault tests (TESTING.md §4.4 "BufferedFS", the nemesis mode in
 * which a killed node loses what was not fsynced): writes and truncations stay in this
 * process's memory until datasync()/sync() of that file, which applies them to the underlying
 * file system and syncs it. `kill -9` of the process therefore loses exactly the unsynced data,
 * as a power cut would — without it the kernel's page cache would keep everything.
 * Directory operations (create, rename, unlink, mkdir) go to the underlying file system at
 * once: a kill never undoes them (a power cut might; SimFs models that part). Buffered state
 * is keyed by path and follows renames. Reads see the buffered writes. Its files offer
 * writeDurable (DurableWriter) like RealFs's, so a node in this mode takes the same log path as
 * in production: those bytes reach the disk at once, durably, and nothing else does.
 */
export class BufferedFs implements FileSystem {
    private readonly files = new Map<string, BufferedFile>();

    constructor(private readonly inner: FileSystem = realFs) {}

    /** Bytes written but not yet synced, over all files (for tests). */
    get bufferedBytes(): number {
        let n = 0;
        for (const f of this.files.values()) {
            for (const op of f.ops) if (op.kind === 'write' && op.durable !== true) n += op.data.length;
        }
        return n;
    }

    async open(path: string, mode: OpenMode): Promise<FsFile> {
        let file: FsFile;
        if (mode === 'replace' && (this.files.has(path) || (await this.exists(path)))) {
            // The truncation is buffered like any other, so a kill before a sync undoes it.
            file = await this.inner.open(path, 'readWrite');
            const state = await this.track(path, file);
            state.ops.push({ kind: 'truncate', size: 0 });
            state.size = 0;
        } else {
            file = await this.inner.open(path, mode);
            await this.track(path, file);
        }
        return new BufferedRealFile(this, path, file);
    }

    async readFile(path: string): Promise<Uint8Array> {
        const file = await this.open(path, 'read');
        try {
            return await file.read(0, await file.size());
        } finally {
            await file.close();
        }
    }

    async rename(from: string, to: string): Promise<void> {
        await this.inner.rename(from, to);
        const state = this.files.get(from);
        this.files.delete(to);
        if (state !== undefined) {
            this.files.delete(from);
            this.files.set(to, state);
            return;
        }
        // A directory: buffered files under it move with it.
        for (const [path, s] of [...this.files]) {
            if (path.startsWith(`${from}/`)) {
                this.files.delete(path);
                this.files.set(to + path.slice(from.length), s);
            }
        }
    }

    async unlink(path: string): Promise<void> {
        await this.inner.unlink(path);
        this.files.delete(path);
    }

    mkdir(path: string): Promise<void> {
        return this.inner.mkdir(path);
    }

    readdir(path: string): Promise<string[]> {
        return this.inner.readdir(path);
    }

    async stat(path: string): Promise<FileStat> {
        const s = await this.inner.stat(path);
        const state = this.files.get(path);
        return state === undefined ? s : { size: state.size, isDirectory: false };
    }

    fsyncDir(path: string): Promise<void> {
        return this.inner.fsyncDir(path);
    }

    /** @internal */
    state(path: string): BufferedFile {
        const s = this.files.get(path);
        if (s === undefined) throw new Error(`BufferedFs: ${path} is not tracked`);
        return s;
    }

    /** @internal Applies the buffered ops of `path` through `file`, then syncs it. */
    async flush(path: string, file: FsFile, full: boolean): Promise<void> {
        const s = this.state(path);
        const ops = s.ops;
        s.ops = [];
        for (const op of ops) {
            if (op.kind === 'write') await file.write(op.offset, op.data);
            else await file.truncate(op.size);
        }
        await (full ? file.sync() : file.datasync());
    }

    /**
     * @internal BufferedRealFile.writeDurable: `data` goes to the disk now and durably (through
     * the underlying file's writeDurable, else write + datasync), and only it: the buffered ops
     * stay buffered. It is also kept as the newest op, so that reads, which replay the ops over
     * the disk's content, see it above older buffered writes and truncations (a later flush
     * writes it again, harmlessly) — until no buffered op is left: then the disk alone is right,
     * and the durable ops are dropped (the raft log writes nothing else to its open segment, so
     * its ops never pile up).
     */
    async writeDurable(path: string, file: FsFile, position: number, data: Uint8Array): Promise<void> {
        const s = this.state(path);
        const copy = Uint8Array.prototype.slice.call(data);
        s.ops.push({ kind: 'write', offset: position, data: copy, durable: true });
        s.size = Math.max(s.size, position + copy.length);
        s.durableWrites++;
        try {
            if (hasDurableWrite(file)) {
                await file.writeDurable(position, copy);
            } else {
                await file.write(position, copy);
                await file.datasync();
            }
        } finally {
            s.durableWrites--;
        }
        if (s.durableWrites === 0 && s.ops.every((op) => op.kind === 'write' && op.durable === true)) s.ops = [];
    }

    private async track(path: string, file: FsFile): Promise<BufferedFile> {
        let s = this.files.get(path);
        if (s === undefined) {
            s = { size: await file.size(), ops: [], durableWrites: 0 };
            this.files.set(path, s);
        }
        return s;
    }

    private async exists(path: string): Promise<boolean> {
        try {
            await this.inner.stat(path);
            return true;
        } catch {
            return false;
        }
    }
}

class BufferedRealFile implements FsFile, DurableWriter {
    constructor(private readonly fs: BufferedFs, readonly path: string, private readonly file: FsFile) {}

    async read(position: number, length: number): Promise<Uint8Array> {
        const s = this.fs.state(this.path);
        const end = Math.min(s.size, position + length);
        if (end <= position) return new Uint8Array(0);
        const out = new Uint8Array(end - position);
        out.set(await this.file.read(position, end - position));
        // Replay the buffered ops over the range, in order (a truncation zeroes what it cut, so
        // a later extension reads zeros there).
        for (const op of s.ops) {
            if (op.kind === 'truncate') {
                if (op.size < end) out.fill(0, Math.max(0, op.size - position));
                continue;
            }
            const lo = Math.max(position, op.offset);
            const hi = Math.min(end, op.offset + op.data.length);
            if (hi > lo) out.set(op.data.subarray(lo - op.offset, hi - op.offset), lo - position);
        }
        return out;
    }

    async write(position: number, data: Uint8Array): Promise<void> {
        const s = this.fs.state(this.path);
        // A copy (Buffer's own slice() would be a view of the caller's bytes, which it may reuse).
        s.ops.push({ kind: 'write', offset: position, data: Uint8Array.prototype.slice.call(data) });
        s.size = Math.max(s.size, position + data.length);
    }

    writeDurable(position: number, data: Uint8Array): Promise<void> {
        return this.fs.writeDurable(this.path, this.file, position, data);
    }

    async append(data: Uint8Array): Promise<void> {
        await this.write(this.fs.state(this.path).size, data);
    }

    async truncate(size: number): Promise<void> {
        const s = this.fs.state(this.path);
        s.ops.push({ kind: 'truncate', size });
        s.size = size;
    }

    datasync(): Promise<void> {
        return this.fs.flush(this.path, this.file, false);
    }

    sync(): Promise<void> {
        return this.fs.flush(this.path, this.file, true);
    }

    async size(): Promise<number> {
        return this.fs.state(this.path).size;
    }

    close(): Promise<void> {
        return this.file.close();
    }
}
