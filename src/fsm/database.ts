// One database in the SQLite worker, in one of two modes:
//
//   file: no SQLite connection is open. Committed entries are applied by writing page images
//         into the main file at (pgno - 1) * pageSize and truncating it to the new size
//         (DESIGN.md §3.2). Followers are always in this mode.
//   sql:  this node leads and clients have sessions. An anchor connection stays open for as
//         long as the mode lasts, so that closing a session never triggers SQLite's
//         checkpoint-on-last-close (which would copy uncommitted frames into the main file).
//         Sessions write in WAL mode; after each committing transaction the new frames are
//         read from the -wal file (wal.ts) and become a pending transaction.
//
// Committed state in sql mode = main file overlaid with the raft-committed WAL frames
// (`committedFrames`: page → offset of the newest committed frame). Pending transactions'
// frames lie after them in the WAL. No checkpoint runs while anything is pending, so the
// committed image of any page can always be read back: from its committed frame, else from
// the main file. That is how pre-images are obtained for the undo file, and how snapshots
// read a page-exact committed image while later transactions are pending.

import BetterSqlite3 from 'better-sqlite3';
import {
    closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, rmSync, writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { StorageError } from '../lib/errors.js';
import { encodeFrames, isValidPageSize, type FramesEntry } from './entry.js';
import { databaseFileName } from './layout.js';
import type { CapturedWrite, DatabaseDigest } from './protocol.js';
import { applyUndoFile, writeUndoFile, type UndoPage } from './undo.js';
import {
    captureTransactionAt, FRAME_HEADER_BYTES, openWal, readExactly, readFramePage, WAL_HEADER_BYTES, type WalHeader,
} from './wal.js';

export interface PendingTx {
    readonly txId: number;
    readonly pages: Map<number, number>;
    readonly sizeAfterPages: number;
}

/** A session as the database sees it (session.ts): it can be told to let go of SQLite. */
export interface SessionLink {
    invalidate(reason: string): void;
}

export type Crash = (point: string) => void;

export function openConnection(path: string): BetterSqlite3.Database {
    const conn = new BetterSqlite3(path, { timeout: 0 });
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = OFF');
    conn.pragma('wal_autocheckpoint = 0');
    return conn;
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

export class Database {
    readonly path: string;
    readonly walPath: string;
    readonly undoPath: string;
    mode: 'file' | 'sql' = 'file';
    pageSize = 0;
    committedSizePages = 0;
    readonly sessions = new Set<SessionLink>();
    /** The session holding SQLite's write lock across requests (an open write transaction). */
    writer: SessionLink | undefined;
    readonly pending: PendingTx[] = [];
    private anchor: BetterSqlite3.Database | undefined;
    private fd: number | undefined;
    /** Size of the main file as this object last left it through `fd` (file mode), or -1: unknown. */
    private fdSize = -1;
    /**
     * The -wal file, opened by the first capture of a sql-mode period and kept until the anchor
     * closes: while the anchor is open SQLite never deletes or replaces the file (a checkpoint
     * only truncates it), so one descriptor serves every capture (no open/close per write).
     */
    private walFd: number | undefined;
    private walHeader: WalHeader | undefined;
    private walOffset = 0;
    private readonly committedFrames = new Map<number, number>();
    /** Counters for tests and diagnostics. */
    readonly stats = { checkpoints: 0, walRestarts: 0, undos: 0 };
    /** The main file was written since its last fsync. */
    private dirty = false;

    constructor(readonly name: string, dir: string, private readonly crash: Crash) {
        this.path = join(dir, databaseFileName(name));
        this.walPath = `${this.path}-wal`;
        this.undoPath = `${this.path}.undo`;
        if (existsSync(this.path)) this.loadFromFile();
    }

    private loadFromFile(): void {
        const fd = openSync(this.path, 'r');
        try {
            const size = fstatSync(fd).size;
            if (size === 0) return;
            const head = Buffer.alloc(100);
            if (readExactly(fd, head, 0) < 100) throw new StorageError(`${this.path}: short database file`);
            const raw = head.readUInt16BE(16);
            const pageSize = raw === 1 ? 65536 : raw;
            if (!isValidPageSize(pageSize) || size % pageSize !== 0) {
                throw new StorageError(`${this.path}: bad page size or file size`, 'ERR_STORAGE_CORRUPT');
            }
            this.pageSize = pageSize;
            this.committedSizePages = size / pageSize;
        } finally {
            closeSync(fd);
        }
    }

    get lastPendingTx(): number {
        return this.pending.at(-1)?.txId ?? 0;
    }

    /** Opens the anchor connection: the database can now have sessions. */
    enterSqlMode(): BetterSqlite3.Database {
        if (this.mode === 'sql') return this.anchor as BetterSqlite3.Database;
        this.closeFd();
        this.removeWalFiles();
        this.anchor = openConnection(this.path);
        if (this.pageSize === 0) this.pageSize = this.anchor.pragma('page_size', { simple: true }) as number;
        this.pin();
        this.walHeader = undefined;
        this.walOffset = 0;
        this.committedFrames.clear();
        this.mode = 'sql';
        return this.anchor;
    }

    /**
     * The anchor holds a read transaction (hence a SHARED lock on the database file) whenever
     * it is not checkpointing. SQLite checkpoints and deletes the WAL when a connection closes
     * and it can take an EXCLUSIVE lock, i.e. when no other connection holds one; an idle
     * connection in WAL mode holds none. Without the pin, closing a session would copy
     * uncommitted frames into the main file.
     */
    private pin(): void {
        const anchor = this.anchor as BetterSqlite3.Database;
        anchor.exec('BEGIN');
        anchor.prepare('SELECT count(*) FROM sqlite_schema').get();
    }

    private unpin(): void {
        const anchor = this.anchor as BetterSqlite3.Database;
        if (anchor.inTransaction) anchor.exec('COMMIT');
    }

    /** Runs `fn` on the anchor outside its pinning read transaction. */
    private withAnchor<T>(fn: (anchor: BetterSqlite3.Database) => T): T {
        const anchor = this.anchor as BetterSqlite3.Database;
        this.unpin();
        try {
            return fn(anchor);
        } finally {
            this.pin();
        }
    }

    /** Closes every session and the anchor after a full checkpoint (nothing may be pending). */
    enterFileMode(reason: string): void {
        if (this.mode === 'file') return;
        assert(this.pending.length === 0, 'file mode with pending transactions');
        this.invalidateSessions(reason);
        this.checkpointFully();
        this.closeAnchor();
        this.truncateMain();
        this.mode = 'file';
    }

    invalidateSessions(reason: string): void {
        for (const s of [...this.sessions]) s.invalidate(reason);
        this.sessions.clear();
        this.writer = undefined;
    }

    private checkpointFully(): void {
        assert(this.anchor !== undefined);
        const [row] = this.withAnchor((a) => a.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]);
        if (row === undefined || row.busy !== 0) throw new StorageError(`${this.name}: checkpoint did not complete`);
        this.committedFrames.clear();
        this.walHeader = undefined;
        this.walOffset = 0;
        this.dirty = true;
    }

    private closeAnchor(): void {
        if (this.walFd !== undefined) closeSync(this.walFd);
        this.walFd = undefined;
        if (this.anchor !== undefined) this.unpin();
        this.anchor?.close();
        this.anchor = undefined;
        this.removeWalFiles();
    }

    private removeWalFiles(): void {
        rmSync(this.walPath, { force: true });
        rmSync(`${this.path}-shm`, { force: true });
    }

    private truncateMain(): void {
        if (!existsSync(this.path)) return;
        this.truncateTo(this.openFd(), this.committedSizePages * this.pageSize);
    }

    /** ftruncate only when the size changes (an ftruncate to the same size still dirties the inode). */
    private truncateTo(fd: number, bytes: number): void {
        if (this.fdSize < 0) this.fdSize = fstatSync(fd).size;
        if (this.fdSize === bytes) return;
        ftruncateSync(fd, bytes);
        this.fdSize = bytes;
        this.dirty = true;
    }

    private openFd(): number {
        if (this.fd === undefined) {
            this.fd = openSync(this.path, existsSync(this.path) ? 'r+' : 'w+');
            this.fdSize = -1;
        }
        return this.fd;
    }

    private closeFd(): void {
        if (this.fd !== undefined) closeSync(this.fd);
        this.fd = undefined;
        this.fdSize = -1;
    }

    /**
     * Looks for a transaction that a session just committed and turns it into a pending
     * transaction and its entry. Called after every request that left its connection outside
     * a transaction.
     */
    capture(txId: () => number): CapturedWrite | undefined {
        assert(this.mode === 'sql');
        // One descriptor for finding the frames and reading their pages, kept for the next one.
        this.walFd ??= openWal(this.walPath);
        const walFd = this.walFd;
        if (walFd === undefined) return undefined;
        let entry: Uint8Array;
        let tx: ReturnType<typeof captureTransactionAt>;
        let id: number;
        {
            tx = captureTransactionAt(walFd, this.walHeader, this.walOffset);
            if (tx === undefined) return undefined;
            const restarted = this.walHeader === undefined || this.walHeader.salt1 !== tx.header.salt1
                || this.walHeader.salt2 !== tx.header.salt2;
            if (restarted) {
                // SQLite restarts the WAL only once every frame was checkpointed: the main file
                // holds all committed pages, and nothing can be pending (no checkpoint then).
                assert(this.pending.length === 0, `${this.name}: WAL restarted while transactions are pending`);
                if (this.walHeader !== undefined) this.stats.walRestarts++;
                this.committedFrames.clear();
            }
            this.walHeader = tx.header;
            this.walOffset = tx.endOffset;
            this.pageSize = tx.header.pageSize;
            id = txId();
            const pages = tx.pages;
            const pageNumbers = [...pages.keys()].sort((a, b) => a - b);
            entry = encodeFrames({
                database: this.name, txId: id, pageSize: this.pageSize, sizeAfterPages: tx.sizeAfterPages,
                pageNumbers,
                readPage: (i, target) => {
                    readFramePage(walFd, tx, pages.get(pageNumbers[i] as number) as number, target);
                },
            });
        }
        this.pending.push({ txId: id, pages: tx.pages, sizeAfterPages: tx.sizeAfterPages });
        return { txId: id, database: this.name, entry };
    }

    /** The oldest pending transaction was committed by raft. */
    commit(txId: number): void {
        const tx = this.pending.shift();
        assert(tx !== undefined && tx.txId === txId, `${this.name}: commit of ${txId} out of order`);
        for (const [pgno, offset] of tx.pages) this.committedFrames.set(pgno, offset);
        this.committedSizePages = tx.sizeAfterPages;
        for (const pgno of this.committedFrames.keys()) {
            if (pgno > this.committedSizePages) this.committedFrames.delete(pgno);
        }
    }

    /** Frames in the WAL (committed or pending) since the last checkpoint. */
    get walFrames(): number {
        if (this.walOffset < WAL_HEADER_BYTES || this.pageSize === 0) return 0;
        return (this.walOffset - WAL_HEADER_BYTES) / (FRAME_HEADER_BYTES + this.pageSize);
    }

    /**
     * A local checkpoint (never replicated): only with nothing pending and no open write
     * transaction. Returns false when readers or a writer prevent a complete one.
     */
    maybeCheckpoint(): boolean {
        if (this.mode !== 'sql') return true;
        if (this.committedFrames.size === 0 && this.walFrames === 0) return true;
        if (this.pending.length > 0 || this.writer !== undefined) return false;
        const [row] = this.withAnchor((a) => a.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]);
        if (row === undefined || row.busy !== 0) return false;
        this.crash('checkpoint-after');
        this.stats.checkpoints++;
        this.committedFrames.clear();
        this.walHeader = undefined;
        this.walOffset = 0;
        this.dirty = true;
        return true;
    }

    /** Follower apply: page images into the main file, then the new size. */
    applyEntry(entry: FramesEntry): void {
        assert(this.pending.length === 0, `${this.name}: follower apply with pending transactions`);
        this.enterFileMode('database changed by replication');
        const fd = this.openFd();
        const ps = entry.pageSize;
        this.pageSize = ps;
        if (this.fdSize < 0) this.fdSize = fstatSync(fd).size;
        entry.pageNumbers.forEach((pgno, i) => {
            if (pgno <= entry.sizeAfterPages) {
                writeAll(fd, entry.pages.subarray(i * ps, (i + 1) * ps), (pgno - 1) * ps);
                this.fdSize = Math.max(this.fdSize, pgno * ps);
            }
            if (i === 0) this.crash('apply-mid');
        });
        this.truncateTo(fd, entry.sizeAfterPages * ps);
        this.committedSizePages = entry.sizeAfterPages;
        this.dirty = true;
    }

    /** The committed image of page `pgno` (1 ≤ pgno ≤ committedSizePages) into `target`. */
    readCommittedPage(pgno: number, target: Uint8Array, walFd: number | undefined, mainFd: number): void {
        const offset = this.committedFrames.get(pgno);
        if (offset !== undefined && walFd !== undefined) {
            readExactly(walFd, target, offset);
        } else {
            const n = readExactly(mainFd, target, (pgno - 1) * this.pageSize);
            target.fill(0, n);
        }
    }

    /** Calls `fn` with a page reader over the committed state. */
    withCommittedReader<T>(fn: (read: (pgno: number, target: Uint8Array) => void) => T): T {
        const mainFd = openSync(this.path, existsSync(this.path) ? 'r' : 'w+');
        const walFd = this.committedFrames.size > 0 ? openSync(this.walPath, 'r') : undefined;
        try {
            return fn((pgno, target) => this.readCommittedPage(pgno, target, walFd, mainFd));
        } finally {
            closeSync(mainFd);
            if (walFd !== undefined) closeSync(walFd);
        }
    }

    /**
     * Leadership lost (or node closing) with transactions pending: undo file → close every
     * connection after a full checkpoint → write the pre-images back and truncate → remove the
     * undo file (DESIGN.md §3.1). Returns the undone transaction ids.
     */
    undo(reason: string): number[] {
        if (this.pending.length === 0) return [];
        const undone = this.pending.map((t) => t.txId);
        this.stats.undos++;
        // The images to restore: every committed page a pending transaction wrote, and every
        // committed page past the smallest size a pending transaction left (VACUUM, DROP): the
        // checkpoint below truncates the main file to the last pending size, losing them.
        const touched = new Set<number>();
        let smallest = this.committedSizePages;
        for (const tx of this.pending) {
            smallest = Math.min(smallest, tx.sizeAfterPages);
            for (const pgno of tx.pages.keys()) if (pgno <= this.committedSizePages) touched.add(pgno);
        }
        for (let pgno = smallest + 1; pgno <= this.committedSizePages; pgno++) touched.add(pgno);
        const pgnos = [...touched].sort((a, b) => a - b);
        const ps = this.pageSize;
        this.withCommittedReader((read) => {
            function* images(): Generator<UndoPage> {
                for (const pgno of pgnos) {
                    const image = Buffer.alloc(ps);
                    read(pgno, image);
                    yield { pgno, image };
                }
            }
            writeUndoFile(this.undoPath, ps, this.committedSizePages, images(), pgnos.length);
        });
        this.crash('undo-after-file');
        this.invalidateSessions(reason);
        this.pending.length = 0;
        this.checkpointFully();
        this.closeAnchor();
        this.mode = 'file';
        this.crash('undo-after-checkpoint');
        applyUndoFile(this.undoPath, this.path);
        this.dirty = false;
        return undone;
    }

    /** fsync of the main file when it changed. Call only when the main file holds the committed state. */
    syncMain(): void {
        if (!this.dirty || !existsSync(this.path)) return;
        if (this.fd !== undefined) {
            fsyncSync(this.fd);
        } else {
            const fd = openSync(this.path, 'r');
            try {
                fsyncSync(fd);
            } finally {
                closeSync(fd);
            }
        }
        this.dirty = false;
    }

    /** True when the main file alone holds every committed page (no committed frames in the WAL). */
    get mainIsCurrent(): boolean {
        return this.mode === 'file' || this.committedFrames.size === 0;
    }

    digest(): DatabaseDigest {
        const hash = createHash('sha256');
        const ps = this.pageSize;
        if (this.committedSizePages > 0) {
            this.withCommittedReader((read) => {
                const page = Buffer.alloc(ps);
                for (let p = 1; p <= this.committedSizePages; p++) {
                    read(p, page);
                    hash.update(page);
                }
            });
        }
        let integrity = 'ok';
        if (this.committedSizePages > 0) {
            if (this.mode === 'sql') {
                integrity = this.withAnchor((a) => this.integrityOf(a));
            } else {
                this.closeFd();
                const conn = new BetterSqlite3(this.path, { timeout: 0 });
                try {
                    integrity = this.integrityOf(conn);
                } finally {
                    conn.close();
                    this.removeWalFiles();
                }
            }
        }
        return { database: this.name, pageSize: ps, sizePages: this.committedSizePages, sha256: hash.digest('hex'),
            integrity };
    }

    private integrityOf(conn: BetterSqlite3.Database): string {
        const rows = conn.pragma('integrity_check') as { integrity_check: string }[];
        return rows.map((r) => r.integrity_check).join('; ');
    }

    /** Closes every handle. With nothing pending the anchor's close checkpoints committed frames. */
    close(reason: string): void {
        assert(this.pending.length === 0, 'close with pending transactions');
        if (this.mode === 'sql') this.enterFileMode(reason);
        this.closeFd();
    }
}
