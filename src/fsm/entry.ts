// The raft entry of one committed write transaction: dqlite's FRAMES command
// (dqlite-notes.md §A.2, canonical/dqlite src/command.h). All integers little-endian.
//
//   header   format u8 = 1, type u8 = 2 (FRAMES), 6 unused bytes
//   filename text: UTF-8, NUL, zero padding to a multiple of 8
//   tx_id    u64  (tqlite: the leader's local transaction id; dqlite sends 0; never interpreted
//                  by followers)
//   truncate u32  the database size in pages after the commit (SQLite's WAL "nTruncate"
//                  field of the commit frame; dqlite's leader sends 0 and derives the size from
//                  page 1)
//   is_commit u8 = 1, unused u8, unused u16
//   n_pages  u32, page_size u16 (65536 is written as 1, SQLite's own convention), unused u16
//   n_pages page numbers, u64 each, then n_pages page images of page_size bytes, same order.
//
// The page images are those the transaction wrote; page numbers are unique within an entry.

import { assert } from '../lib/assert.js';
import { DecodeError } from '../lib/errors.js';

export const ENTRY_FORMAT = 1;
export const ENTRY_TYPE_FRAMES = 2;

export interface FramesEntry {
    readonly database: string;
    readonly txId: number;
    readonly pageSize: number;
    /** Database size in pages after the commit. */
    readonly sizeAfterPages: number;
    readonly pageNumbers: readonly number[];
    /** Page i's image is pages.subarray(i * pageSize, (i + 1) * pageSize). */
    readonly pages: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function pad8(n: number): number {
    return (n + 7) & ~7;
}

export function isValidPageSize(size: number): boolean {
    return size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
}

/** Bytes of the entry before the page numbers, for a database name of `nameBytes` UTF-8 bytes. */
function headerBytes(nameBytes: number): number {
    return 8 + pad8(nameBytes + 1) + 8 + 4 + 4 + 4 + 4;
}

/**
 * Encodes an entry. `readPage(i, target)` fills `target` (pageSize bytes) with the image of
 * pageNumbers[i], so that the caller can read pages straight from a file into the entry.
 */
export function encodeFrames(options: {
    database: string;
    txId: number;
    pageSize: number;
    sizeAfterPages: number;
    pageNumbers: readonly number[];
    readPage: (i: number, target: Uint8Array) => void;
}): Uint8Array {
    const { pageSize, pageNumbers } = options;
    assert(isValidPageSize(pageSize), `bad page size ${pageSize}`);
    assert(Number.isSafeInteger(options.txId) && options.txId >= 0, 'bad tx id');
    assert(options.sizeAfterPages >= 0 && options.sizeAfterPages <= 0xffffffff, 'bad size');
    const name = encoder.encode(options.database);
    assert(!name.includes(0), 'database name must not contain NUL');
    const n = pageNumbers.length;
    const pagesAt = headerBytes(name.length) + 8 * n;
    const out = Buffer.alloc(pagesAt + n * pageSize);
    out.writeUInt8(ENTRY_FORMAT, 0);
    out.writeUInt8(ENTRY_TYPE_FRAMES, 1);
    out.set(name, 8);
    let at = 8 + pad8(name.length + 1);
    out.writeBigUInt64LE(BigInt(options.txId), at);
    out.writeUInt32LE(options.sizeAfterPages, at + 8);
    out.writeUInt8(1, at + 12);
    out.writeUInt32LE(n, at + 16);
    out.writeUInt16LE(pageSize === 65536 ? 1 : pageSize, at + 20);
    at += 24;
    for (let i = 0; i < n; i++) {
        const pgno = pageNumbers[i] as number;
        assert(Number.isSafeInteger(pgno) && pgno >= 1, `bad page number ${pgno}`);
        out.writeBigUInt64LE(BigInt(pgno), at + 8 * i);
        options.readPage(i, out.subarray(pagesAt + i * pageSize, pagesAt + (i + 1) * pageSize));
    }
    return out;
}

/** Decodes and validates an entry (untrusted bytes: every shortfall is a DecodeError). */
export function decodeFrames(data: Uint8Array): FramesEntry {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length < 8) throw new DecodeError('fsm entry: short header');
    if (buf[0] !== ENTRY_FORMAT) throw new DecodeError(`fsm entry: unknown format ${buf[0]}`);
    if (buf[1] !== ENTRY_TYPE_FRAMES) throw new DecodeError(`fsm entry: unsupported type ${buf[1]}`);
    const nul = buf.indexOf(0, 8);
    if (nul < 0) throw new DecodeError('fsm entry: unterminated filename');
    let database: string;
    try {
        database = decoder.decode(buf.subarray(8, nul));
    } catch (error) {
        throw new DecodeError('fsm entry: filename is not UTF-8', { cause: error });
    }
    let at = 8 + pad8(nul - 8 + 1);
    if (buf.length < at + 24) throw new DecodeError('fsm entry: short frames header');
    const txId = Number(buf.readBigUInt64LE(at));
    const sizeAfterPages = buf.readUInt32LE(at + 8);
    if (buf[at + 12] !== 1) throw new DecodeError('fsm entry: non-commit frames are not supported');
    const n = buf.readUInt32LE(at + 16);
    const rawSize = buf.readUInt16LE(at + 20);
    const pageSize = rawSize === 1 ? 65536 : rawSize;
    if (!isValidPageSize(pageSize)) throw new DecodeError(`fsm entry: bad page size ${rawSize}`);
    at += 24;
    if (buf.length !== at + n * 8 + n * pageSize) throw new DecodeError('fsm entry: length does not match page count');
    const pageNumbers: number[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
        const pgno = buf.readBigUInt64LE(at + 8 * i);
        if (pgno < 1n || pgno > 0xffffffffn) throw new DecodeError(`fsm entry: bad page number ${pgno}`);
        const p = Number(pgno);
        if (seen.has(p)) throw new DecodeError(`fsm entry: duplicate page ${p}`);
        seen.add(p);
        pageNumbers.push(p);
    }
    const pages = buf.subarray(at + 8 * n);
    return { database, txId, pageSize, sizeAfterPages, pageNumbers, pages };
}

/** The database name of an entry without decoding the pages (DecodeError when malformed). */
export function entryDatabase(data: Uint8Array): string {
    return decodeFrames(data).database;
}
