// Reading SQLite's -wal file (https://www.sqlite.org/fileformat2.html#walformat). Runs in the
// SQLite worker with synchronous file calls: the worker is the only thread that touches
// database files, and blocking it never blocks the main event loop.
//
// WAL header (32 bytes, big-endian): magic, format version, page size, checkpoint sequence,
// salt-1, salt-2, checksum-1, checksum-2. Each frame: a 24-byte header (page number, database
// size after commit for a commit frame else 0, salt-1, salt-2, checksum-1, checksum-2) and
// then the page image. A frame belongs to the current WAL generation iff its salts equal the
// header's; when SQLite restarts the WAL it writes a new header with new salts and starts
// again at byte 32, leaving stale frames of older generations behind it.

import { closeSync, openSync, readSync } from 'node:fs';

export const WAL_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 24;

export interface WalHeader {
    readonly pageSize: number;
    readonly salt1: number;
    readonly salt2: number;
}

/** The frames of one committed transaction, found in the WAL. */
export interface CapturedTransaction {
    /** Page number → byte offset of that page's image in the WAL (the last frame wins). */
    readonly pages: Map<number, number>;
    /** Database size in pages after the commit. */
    readonly sizeAfterPages: number;
    /** Byte offset just past the commit frame: where the next transaction's frames start. */
    readonly endOffset: number;
    readonly header: WalHeader;
    /**
     * The first bytes read while looking for the frames (from WAL byte `start`): see readFramePage.
     * They live in a buffer that the next captureTransactionAt() call reuses: read them first.
     */
    readonly scanned: { readonly start: number; readonly bytes: Uint8Array };
}

export function readExactly(fd: number, target: Uint8Array, position: number): number {
    let done = 0;
    while (done < target.length) {
        const n = readSync(fd, target, done, target.length - done, position + done);
        if (n === 0) break;
        done += n;
    }
    return done;
}

export function readWalHeader(fd: number): WalHeader | undefined {
    const b = Buffer.alloc(WAL_HEADER_BYTES);
    if (readExactly(fd, b, 0) < WAL_HEADER_BYTES) return undefined;
    const magic = b.readUInt32BE(0);
    if (magic !== 0x377f0682 && magic !== 0x377f0683) return undefined;
    const raw = b.readUInt32BE(8);
    return { pageSize: raw === 1 ? 65536 : raw, salt1: b.readUInt32BE(16), salt2: b.readUInt32BE(20) };
}

export function sameGeneration(a: WalHeader | undefined, b: WalHeader | undefined): boolean {
    return a !== undefined && b !== undefined && a.salt1 === b.salt1 && a.salt2 === b.salt2;
}

/** Opens the WAL for reading; undefined when it does not exist. */
export function openWal(walPath: string): number | undefined {
    try {
        return openSync(walPath, 'r');
    } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return undefined;
        throw error;
    }
}

/** Frames are scanned this many bytes at a time (whole frames, at least one). */
const SCAN_CHUNK_BYTES = 64 * 1024;
/**
 * The first chunk's buffer, reused by every call (one per write on the leader: a fresh 64 KiB
 * buffer each time would be that much garbage per write). Later chunks of a big transaction are
 * allocated. One per thread: only the SQLite worker captures.
 */
let firstChunk: Buffer | undefined;

/**
 * Finds the transaction committed after `fromOffset` (the end of the last transaction seen,
 * or 0 when none) in the WAL generation `previous`. When the header's salts changed since,
 * SQLite restarted the WAL and the frames start at byte 32. Returns undefined when no commit
 * frame follows (nothing was written, or a transaction rolled back after spilling frames).
 * The caller opens (openWal) and closes the file.
 *
 * The frames are read a chunk at a time, so a small transaction (one or a few pages, the usual
 * write) is found and its page images read with one system call: the first chunk is returned
 * with it (`scanned`) and readFramePage() copies pages from there.
 */
export function captureTransactionAt(fd: number, previous: WalHeader | undefined,
    fromOffset: number): CapturedTransaction | undefined {
    const header = readWalHeader(fd);
    if (header === undefined) return undefined;
    let offset = sameGeneration(previous, header) && fromOffset >= WAL_HEADER_BYTES ? fromOffset : WAL_HEADER_BYTES;
    const frameBytes = FRAME_HEADER_BYTES + header.pageSize;
    const chunkBytes = Math.max(1, Math.floor(SCAN_CHUNK_BYTES / frameBytes)) * frameBytes;
    const pages = new Map<number, number>();
    let scanned: CapturedTransaction['scanned'] | undefined;
    for (;;) {
        let chunk: Buffer;
        if (scanned !== undefined) {
            chunk = Buffer.allocUnsafe(chunkBytes);
        } else {
            if (firstChunk?.length !== chunkBytes) firstChunk = Buffer.allocUnsafe(chunkBytes);
            chunk = firstChunk;
        }
        // Stops short only at the end of the file: a partial frame there is not a frame yet.
        const got = readExactly(fd, chunk, offset);
        scanned ??= { start: offset, bytes: chunk.subarray(0, got) };
        for (let at = 0; at + frameBytes <= got; at += frameBytes) {
            if (chunk.readUInt32BE(at + 8) !== header.salt1 || chunk.readUInt32BE(at + 12) !== header.salt2) {
                return undefined;
            }
            const pgno = chunk.readUInt32BE(at);
            const commitSize = chunk.readUInt32BE(at + 4);
            pages.set(pgno, offset + FRAME_HEADER_BYTES);
            offset += frameBytes;
            if (commitSize !== 0) return { pages, sizeAfterPages: commitSize, endOffset: offset, header, scanned };
        }
        if (got < chunkBytes) return undefined;
    }
}

/** Reads the page image at WAL byte `offset` of a captured transaction into `target`. */
export function readFramePage(fd: number, tx: CapturedTransaction, offset: number, target: Uint8Array): void {
    const { start, bytes } = tx.scanned;
    const from = offset - start;
    if (from >= 0 && from + target.length <= bytes.length) {
        target.set(bytes.subarray(from, from + target.length));
    } else {
        readExactly(fd, target, offset);
    }
}
