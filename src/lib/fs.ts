// The one file-system interface used by all of tqlite's persistence: the raft log now, the
// state machine's undo files, durable index and snapshots later. Two implementations:
//
//   - RealFs (real-fs.ts): node:fs/promises, i.e. libuv's thread pool; nothing blocks the
//     event loop.
//   - SimFs (sim-fs.ts): a deterministic in-memory file system for tests and the simulator. It
//     keeps unsynced writes and metadata operations pending and can build the durable image a
//     power cut would leave (dropping, tearing at sector granularity, reordering pending ops),
//     and inject EIO / ENOSPC / bit flips.
//
// Durability rules every caller must follow (TESTING.md §4.1), the same on both:
//   - `write` only reaches the page cache. Data (and the file's size) is durable after
//     `datasync()` or `sync()` on a handle of that file returned.
//   - Creating, renaming or deleting a directory entry (open with create, rename, unlink,
//     mkdir) is durable only after `fsyncDir(parent)` returned.
//   - Replacing a file: write a temporary file → datasync → rename → fsyncDir.
//   - A failed write or sync is never retried: the caller fails and stops (fsyncgate).
//
// Errors are rejections whose `code` is the errno name ('ENOENT', 'EEXIST', 'EIO', 'ENOSPC',
// ...), as Node's fs errors are; FsError is what SimFs throws.

/**
 * How `open` treats the path:
 *  - 'read':      must exist, read only.
 *  - 'readWrite': must exist, read and write.
 *  - 'create':    must not exist (EEXIST), created empty, read and write.
 *  - 'replace':   created if missing, truncated to 0 if present, read and write.
 */
export type OpenMode = 'read' | 'readWrite' | 'create' | 'replace';

export interface FileStat {
    readonly size: number;
    readonly isDirectory: boolean;
}

/** An open file. Owned by whoever opened it; close() exactly once (later calls are no-ops). */
export interface FsFile {
    readonly path: string;
    /**
     * Reads up to `length` bytes at `position`; the result is shorter only at end of file.
     * The returned bytes are the caller's (a copy).
     */
    read(position: number, length: number): Promise<Uint8Array>;
    /** Writes all of `data` at `position`, extending the file when needed (a hole reads as zeros). */
    write(position: number, data: Uint8Array): Promise<void>;
    /** Writes `data` at the current end of the file. */
    append(data: Uint8Array): Promise<void>;
    /** Sets the size: cuts the tail, or extends with zeros. */
    truncate(size: number): Promise<void>;
    /** fdatasync: the file's data and size are durable when it resolves. */
    datasync(): Promise<void>;
    /** fsync: data and all metadata of the file are durable when it resolves. */
    sync(): Promise<void>;
    size(): Promise<number>;
    close(): Promise<void>;
}

export interface FileSystem {
    open(path: string, mode: OpenMode): Promise<FsFile>;
    /** The whole file (convenience: open, read to the end, close). */
    readFile(path: string): Promise<Uint8Array>;
    /** Atomically replaces `to` (visibility, not durability: fsyncDir the parent after). */
    rename(from: string, to: string): Promise<void>;
    unlink(path: string): Promise<void>;
    /** Creates one directory (the parent must exist); EEXIST when present. */
    mkdir(path: string): Promise<void>;
    /** Entry names of a directory, sorted. */
    readdir(path: string): Promise<string[]>;
    /** Rejects with ENOENT when missing. */
    stat(path: string): Promise<FileStat>;
    /** fsync of a directory: its entries (creations, renames, deletions) become durable. */
    fsyncDir(path: string): Promise<void>;
}

/** The error SimFs raises; RealFs raises Node's own errors, which have the same `code`. */
export class FsError extends Error {
    readonly code: string;
    readonly syscall: string;
    readonly path: string;
    constructor(code: string, syscall: string, path: string) {
        super(`${code}: ${syscall} '${path}'`);
        this.name = 'FsError';
        this.code = code;
        this.syscall = syscall;
        this.path = path;
    }
}

/** The errno name of a file-system error, or undefined. */
export function errorCode(error: unknown): string | undefined {
    if (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string') {
        return (error as { code: string }).code;
    }
    return undefined;
}

/** True for a missing file or directory. */
export function isNotFound(error: unknown): boolean {
    return errorCode(error) === 'ENOENT';
}

/** `path` joined with `name` using '/', the only separator tqlite writes. */
export function joinPath(dir: string, name: string): string {
    if (dir === '' || dir === '.') return name;
    return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** The parent directory of a path ('.' for a bare name). */
export function parentPath(path: string): string {
    const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    const cut = trimmed.lastIndexOf('/');
    if (cut < 0) return '.';
    if (cut === 0) return '/';
    return trimmed.slice(0, cut);
}

/** The last component of a path. */
export function baseName(path: string): string {
    const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
