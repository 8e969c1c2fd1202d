// Raft snapshots on disk: one file per snapshot, `snapshot-<index:16>-<term:16>`, holding the
// snapshot metadata (index, term, configuration) and the state machine's bytes as checksummed
// frames, so a snapshot is written and read in chunks and never has to fit in one buffer.
//
// Writing: a temporary file `tmp-snapshot-…` is written frame by frame; commit() writes the end
// record, fdatasyncs, renames it to its final name and fsyncs the directory — only then is the
// snapshot durable and visible to load. The two newest snapshots are kept; older ones are deleted
// (no directory fsync needed: an old snapshot that reappears after a crash is deleted by the
// next load). A crash leaves the old snapshot complete or the new one complete, never a mix.
//
// All I/O goes through the store's guard: an I/O error fails the whole log store.

import { assert } from '../lib/assert.js';
import { StorageError } from '../lib/errors.js';
import type { FileSystem, FsFile } from '../lib/fs.js';
import { joinPath } from '../lib/fs.js';
import { crc32c } from '../lib/crc32c.js';
import { pad8 } from '../lib/bytes.js';
import type { LogIndex, SnapshotMeta } from '../raft/types.js';
import type { StoreGuard } from './guard.js';
import {
    SNAPSHOT_END_BYTES, SNAPSHOT_FRAME_BYTES_MAX, SNAPSHOT_FRAME_HEADER_BYTES, SNAPSHOT_HEADER_BYTES,
    SNAPSHOT_MAGIC, FORMAT_VERSION, decodeSnapshotMeta, encodeSnapshotEnd, encodeSnapshotFrame,
    encodeSnapshotHeader, encodeSnapshotMeta,
} from './format.js';

const NAME_RE = /^snapshot-(\d{16})-(\d{16})$/;

function pad16(n: number): string {
    return String(n).padStart(16, '0');
}

export function snapshotFileName(index: LogIndex, term: number): string {
    return `snapshot-${pad16(index)}-${pad16(term)}`;
}

export function parseSnapshotFileName(name: string): { index: number; term: number } | undefined {
    const m = NAME_RE.exec(name);
    return m === null ? undefined : { index: Number(m[1]), term: Number(m[2]) };
}

function corrupt(path: string, what: string): StorageError {
    return new StorageError(`${path}: ${what}`, 'ERR_STORAGE_CORRUPT');
}

function newer(a: SnapshotMeta, b: SnapshotMeta): number {
    return b.index - a.index || b.term - a.term;
}

/** Streams one snapshot file, verifying every frame; the last read() verifies the end record. */
export interface SnapshotReader {
    readonly meta: SnapshotMeta;
    /** The next chunk of state-machine bytes, or undefined after the last one (all verified). */
    read(): Promise<Uint8Array | undefined>;
    /** Releases the file. Idempotent. */
    close(): Promise<void>;
}

/** Writes one snapshot. Exactly one of commit() / abort() ends it. */
export interface SnapshotWriter {
    readonly meta: SnapshotMeta;
    /** Appends state-machine bytes (any size; split into frames of at most 16 MiB). */
    write(chunk: Uint8Array): Promise<void>;
    /** Makes the snapshot durable (fdatasync → rename → fsync dir); resolves when it is. */
    commit(): Promise<void>;
    /** Drops the temporary file. Idempotent; a no-op after commit. */
    abort(): Promise<void>;
}

class FileSnapshotReader implements SnapshotReader {
    private position: number;
    private total = 0;
    private frames = 0;
    private done = false;
    private closed = false;

    constructor(readonly meta: SnapshotMeta, private readonly file: FsFile, start: number,
        private readonly fileBytes: number, private readonly onClose: (r: FileSnapshotReader) => void) {
        this.position = start;
    }

    async read(): Promise<Uint8Array | undefined> {
        assert(!this.closed, 'snapshot reader closed');
        if (this.done) return undefined;
        const path = this.file.path;
        const head = await this.file.read(this.position, SNAPSHOT_FRAME_HEADER_BYTES);
        if (head.length < SNAPSHOT_FRAME_HEADER_BYTES) throw corrupt(path, 'truncated snapshot');
        const hb = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
        const length = hb.readUInt32LE(4);
        if (length === 0) {
            const end = await this.file.read(this.position, SNAPSHOT_END_BYTES);
            const eb = Buffer.from(end.buffer, end.byteOffset, end.byteLength);
            if (end.length < SNAPSHOT_END_BYTES || eb.readUInt32LE(0) !== crc32c(eb, 0, 4, SNAPSHOT_END_BYTES)) {
                throw corrupt(path, 'snapshot end record');
            }
            const total = eb.readUInt32LE(8) + eb.readUInt32LE(12) * 0x100000000;
            const frames = eb.readUInt32LE(16) + eb.readUInt32LE(20) * 0x100000000;
            if (total !== this.total || frames !== this.frames) throw corrupt(path, 'snapshot length');
            if (this.position + SNAPSHOT_END_BYTES !== this.fileBytes) throw corrupt(path, 'bytes after snapshot end');
            this.done = true;
            return undefined;
        }
        if (length > SNAPSHOT_FRAME_BYTES_MAX) throw corrupt(path, 'snapshot frame length');
        const frameBytes = SNAPSHOT_FRAME_HEADER_BYTES + pad8(length);
        const frame = await this.file.read(this.position, frameBytes);
        if (frame.length < frameBytes) throw corrupt(path, 'truncated snapshot frame');
        const fb = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
        if (fb.readUInt32LE(0) !== crc32c(fb, 0, 4, frameBytes)) throw corrupt(path, 'snapshot frame checksum');
        this.position += frameBytes;
        this.total += length;
        this.frames += 1;
        return fb.subarray(SNAPSHOT_FRAME_HEADER_BYTES, SNAPSHOT_FRAME_HEADER_BYTES + length);
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        this.onClose(this);
        await this.file.close();
    }
}

/** Opens a snapshot file and checks its header and metadata. */
async function openSnapshotFile(fs: FileSystem, path: string,
    onClose: (r: FileSnapshotReader) => void): Promise<FileSnapshotReader> {
    const file = await fs.open(path, 'read');
    try {
        const size = await file.size();
        const head = await file.read(0, SNAPSHOT_HEADER_BYTES);
        if (head.length < SNAPSHOT_HEADER_BYTES) throw corrupt(path, 'truncated snapshot header');
        const hb = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
        const metaBytes = hb.readUInt32LE(12);
        if (!hb.subarray(0, 8).equals(SNAPSHOT_MAGIC) || hb.readUInt32LE(8) !== FORMAT_VERSION
            || metaBytes % 8 !== 0 || SNAPSHOT_HEADER_BYTES + metaBytes > size) {
            throw corrupt(path, 'snapshot header');
        }
        const metaRaw = await file.read(SNAPSHOT_HEADER_BYTES, metaBytes);
        if (hb.readUInt32LE(28) !== crc32c(metaRaw, crc32c(hb, 0, 0, 28))) {
            throw corrupt(path, 'snapshot header checksum');
        }
        let meta: SnapshotMeta;
        try {
            meta = decodeSnapshotMeta(metaRaw);
        } catch (cause) {
            throw new StorageError(`${path}: snapshot metadata`, 'ERR_STORAGE_CORRUPT', { cause });
        }
        return new FileSnapshotReader(meta, file, SNAPSHOT_HEADER_BYTES + metaBytes, size, onClose);
    } catch (error) {
        await file.close();
        throw error;
    }
}

/** Reads a whole snapshot file to check every checksum; returns its metadata. */
export async function verifySnapshotFile(fs: FileSystem, path: string): Promise<SnapshotMeta> {
    const reader = await openSnapshotFile(fs, path, () => undefined);
    try {
        while ((await reader.read()) !== undefined) { /* every frame is verified by read() */ }
        return reader.meta;
    } finally {
        await reader.close();
    }
}

class FileSnapshotWriter implements SnapshotWriter {
    private position = 0;
    private total = 0;
    private frames = 0;
    private state: 'writing' | 'committing' | 'committed' | 'aborted' = 'writing';
    private chain: Promise<void> = Promise.resolve();

    constructor(private readonly store: SnapshotStore, readonly meta: SnapshotMeta, private readonly file: FsFile,
        readonly tmpPath: string) {}

    async begin(): Promise<void> {
        const header = encodeSnapshotHeader(encodeSnapshotMeta(this.meta));
        await this.file.write(0, header);
        this.position = header.length;
    }

    write(chunk: Uint8Array): Promise<void> {
        const run = async (): Promise<void> => {
            this.store.guard.check();
            assert(this.state === 'writing', `snapshot writer is ${this.state}`);
            for (let at = 0; at < chunk.length; at += SNAPSHOT_FRAME_BYTES_MAX) {
                const part = chunk.subarray(at, Math.min(chunk.length, at + SNAPSHOT_FRAME_BYTES_MAX));
                const frame = encodeSnapshotFrame(part);
                await this.file.write(this.position, frame);
                this.position += frame.length;
                this.total += part.length;
                this.frames += 1;
            }
        };
        // Writes run in call order even when the caller does not await each one.
        const next = this.chain.then(run);
        this.chain = next.catch(() => undefined);
        return next;
    }

    commit(): Promise<void> {
        const run = async (): Promise<void> => {
            this.store.guard.check();
            assert(this.state === 'writing', `snapshot writer is ${this.state}`);
            this.state = 'committing';
            await this.file.write(this.position, encodeSnapshotEnd(this.total, this.frames));
            await this.file.datasync();
            await this.file.close();
            await this.store.install(this);
            this.state = 'committed';
        };
        const next = this.chain.then(run);
        this.chain = next.catch(() => undefined);
        return next;
    }

    async abort(): Promise<void> {
        if (this.state !== 'writing') return;
        this.state = 'aborted';
        this.store.writers.delete(this);
        await this.chain;
        await this.file.close();
        if (this.store.guard.failure === undefined) {
            await this.store.fs.unlink(this.tmpPath).catch(() => undefined);
        }
    }
}

export class SnapshotStore {
    /** The newest first; at most `keep`. */
    private metas: SnapshotMeta[];
    readonly writers = new Set<FileSnapshotWriter>();
    private readonly readers = new Set<FileSnapshotReader>();
    private tmpCounter = 0;
    private installChain: Promise<void> = Promise.resolve();
    private readonly keep = 2;

    /** @internal Built by LogStore.open with the snapshots it loaded. */
    constructor(readonly fs: FileSystem, readonly dir: string, readonly guard: StoreGuard, loaded: SnapshotMeta[]) {
        this.metas = loaded.slice().sort(newer);
    }

    /** The newest durable snapshot, or undefined. */
    latest(): SnapshotMeta | undefined {
        return this.metas[0];
    }

    /** The size of the newest snapshot's file in bytes (its framing included), or 0 when there is none. */
    async latestFileBytes(): Promise<number> {
        this.guard.check();
        const meta = this.metas[0];
        if (meta === undefined) return 0;
        try {
            const file = await this.fs.open(joinPath(this.dir, snapshotFileName(meta.index, meta.term)), 'read');
            try {
                return await file.size();
            } finally {
                await file.close();
            }
        } catch (error) {
            throw this.guard.fail(error);
        }
    }

    /** Durable snapshots, newest first (at most two). */
    list(): readonly SnapshotMeta[] {
        return this.metas.slice();
    }

    /** Starts writing a snapshot. Nothing is visible to load until commit() resolved. */
    async create(meta: SnapshotMeta): Promise<SnapshotWriter> {
        this.guard.check();
        assert(Number.isSafeInteger(meta.index) && meta.index >= 1 && meta.term >= 1, 'bad snapshot meta');
        const tmpPath = joinPath(this.dir, `tmp-${snapshotFileName(meta.index, meta.term)}-${++this.tmpCounter}`);
        const file = await this.fs.open(tmpPath, 'replace');
        const writer = new FileSnapshotWriter(this, meta, file, tmpPath);
        this.writers.add(writer);
        try {
            await writer.begin();
        } catch (error) {
            await file.close();
            this.writers.delete(writer);
            throw error;
        }
        return writer;
    }

    /** Opens the snapshot with this index (default: the newest) for chunked reading. */
    async open(index?: LogIndex): Promise<SnapshotReader> {
        this.guard.check();
        const meta = index === undefined ? this.metas[0] : this.metas.find((m) => m.index === index);
        if (meta === undefined) throw new StorageError(`no snapshot ${index ?? ''}`.trim(), 'ERR_STORAGE');
        const path = joinPath(this.dir, snapshotFileName(meta.index, meta.term));
        let reader: FileSnapshotReader;
        try {
            reader = await openSnapshotFile(this.fs, path, (r) => this.readers.delete(r));
        } catch (error) {
            throw this.guard.fail(error);
        }
        this.readers.add(reader);
        const guard = this.guard;
        return {
            meta: reader.meta,
            async read(): Promise<Uint8Array | undefined> {
                guard.check();
                try {
                    return await reader.read();
                } catch (error) {
                    throw guard.fail(error);
                }
            },
            close: () => reader.close(),
        };
    }

    /** @internal The writer's commit: rename into place, fsync the directory, prune. */
    install(writer: FileSnapshotWriter): Promise<void> {
        const run = async (): Promise<void> => {
            const meta = writer.meta;
            const name = snapshotFileName(meta.index, meta.term);
            await this.fs.rename(writer.tmpPath, joinPath(this.dir, name));
            await this.fs.fsyncDir(this.dir);
            this.writers.delete(writer);
            const others = this.metas.filter((m) => m.index !== meta.index || m.term !== meta.term);
            this.metas = [meta, ...others].sort(newer);
            const drop = this.metas.slice(this.keep);
            this.metas = this.metas.slice(0, this.keep);
            for (const old of drop) await this.fs.unlink(joinPath(this.dir, snapshotFileName(old.index, old.term)));
        };
        const next = this.installChain.then(run);
        this.installChain = next.catch(() => undefined);
        return next;
    }

    /** @internal Aborts unfinished writers and closes readers (LogStore.close). */
    async closeAll(): Promise<void> {
        for (const w of [...this.writers]) await w.abort();
        for (const r of [...this.readers]) await r.close();
    }
}
