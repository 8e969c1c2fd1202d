// Page-exact snapshots of every database at one applied index (DESIGN.md §3.4), written and
// read as a stream so that no database has to fit in memory.
//
//   "TQSNAP01", index u64, count u32, 0 u32,
//   count × { nameBytes u32, pageSize u32, sizePages u32, 0 u32, name padded to 8,
//             sizePages × page image (the committed image of pages 1..sizePages) },
//   crc32c u32 of every previous byte, 0 u32.
// Little-endian. Installing verifies the checksum and runs PRAGMA integrity_check on every
// database before the new generation replaces anything.

import BetterSqlite3 from 'better-sqlite3';
import { closeSync, fstatSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../lib/crc32c.js';
import { StorageError } from '../lib/errors.js';
import type { Database } from './database.js';
import { isValidPageSize } from './entry.js';
import { databaseFileName, fsyncPath } from './layout.js';
import { readExactly } from './wal.js';

const MAGIC = Buffer.from('TQSNAP01', 'latin1');
const RUN_PAGES = 64;

function pad8(n: number): number {
    return (n + 7) & ~7;
}

/** Appends bytes to a file, keeping a running crc. */
class StreamWriter {
    crc = 0;
    offset = 0;
    constructor(readonly fd: number) {}
    write(data: Uint8Array): void {
        this.crc = crc32c(data, this.crc);
        let done = 0;
        while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, this.offset + done);
        this.offset += data.length;
    }
}

/** Writes the snapshot of `databases` (committed state only) to `path`; returns bytes and checksum. */
export function writeSnapshot(path: string, index: number, databases: readonly Database[]):
    { bytes: number; checksum: number } {
    const fd = openSync(path, 'w');
    try {
        const out = new StreamWriter(fd);
        const head = Buffer.alloc(24);
        MAGIC.copy(head);
        head.writeBigUInt64LE(BigInt(index), 8);
        head.writeUInt32LE(databases.length, 16);
        out.write(head);
        for (const db of databases) {
            const name = Buffer.from(db.name, 'utf8');
            const dh = Buffer.alloc(16 + pad8(name.length));
            dh.writeUInt32LE(name.length, 0);
            dh.writeUInt32LE(db.pageSize, 4);
            dh.writeUInt32LE(db.committedSizePages, 8);
            name.copy(dh, 16);
            out.write(dh);
            if (db.committedSizePages === 0) continue;
            const ps = db.pageSize;
            db.withCommittedReader((read) => {
                const run = Buffer.alloc(RUN_PAGES * ps);
                for (let p = 1; p <= db.committedSizePages; p += RUN_PAGES) {
                    const n = Math.min(RUN_PAGES, db.committedSizePages - p + 1);
                    for (let i = 0; i < n; i++) read(p + i, run.subarray(i * ps, (i + 1) * ps));
                    out.write(run.subarray(0, n * ps));
                }
            });
        }
        const tail = Buffer.alloc(8);
        tail.writeUInt32LE(out.crc, 0);
        const checksum = out.crc;
        out.write(tail);
        // No fsync: this file is a hand-over, not a durable copy. The node copies it into the raft
        // snapshot store, which makes its own copy durable, then deletes this one — usually before
        // the kernel wrote it back at all. An fsync here wrote every database to disk once more and
        // held the worker (all SQL) for as long as that took.
        return { bytes: out.offset, checksum };
    } finally {
        closeSync(fd);
    }
}

/** Sequential reader over the snapshot stream file with a running crc. */
class StreamReader {
    crc = 0;
    offset = 0;
    constructor(readonly fd: number, readonly size: number) {}
    read(length: number): Buffer {
        if (this.offset + length > this.size) throw new StorageError('snapshot: truncated', 'ERR_STORAGE_CORRUPT');
        const b = Buffer.alloc(length);
        readExactly(this.fd, b, this.offset);
        this.offset += length;
        this.crc = crc32c(b, this.crc);
        return b;
    }
}

/**
 * Unpacks the received snapshot `streamPath` into database files in `targetDir`, verifying
 * the checksum, the structure and every database's integrity, then fsyncs them all.
 * Returns the snapshot's index. Throws StorageError(ERR_STORAGE_CORRUPT) on any mismatch.
 */
export function unpackSnapshot(streamPath: string, targetDir: string): { index: number; databases: string[] } {
    const fd = openSync(streamPath, 'r');
    const names: string[] = [];
    let index: number;
    try {
        const input = new StreamReader(fd, fstatSync(fd).size);
        const head = input.read(24);
        if (!head.subarray(0, 8).equals(MAGIC)) throw new StorageError('snapshot: bad magic', 'ERR_STORAGE_CORRUPT');
        index = Number(head.readBigUInt64LE(8));
        const count = head.readUInt32LE(16);
        for (let d = 0; d < count; d++) {
            const dh = input.read(16);
            const nameBytes = dh.readUInt32LE(0);
            const pageSize = dh.readUInt32LE(4);
            const sizePages = dh.readUInt32LE(8);
            const name = input.read(pad8(nameBytes)).subarray(0, nameBytes).toString('utf8');
            if (sizePages > 0 && !isValidPageSize(pageSize)) {
                throw new StorageError('snapshot: bad page size', 'ERR_STORAGE_CORRUPT');
            }
            names.push(name);
            const out = openSync(join(targetDir, databaseFileName(name)), 'w');
            try {
                let at = 0;
                for (let p = 0; p < sizePages; p += RUN_PAGES) {
                    const n = Math.min(RUN_PAGES, sizePages - p);
                    const run = input.read(n * pageSize);
                    let done = 0;
                    while (done < run.length) done += writeSync(out, run, done, run.length - done, at + done);
                    at += run.length;
                }
                fsyncSync(out);
            } finally {
                closeSync(out);
            }
        }
        const expected = input.crc;
        const tail = input.read(8);
        if (tail.readUInt32LE(0) !== expected || input.offset !== input.size) {
            throw new StorageError('snapshot: checksum mismatch', 'ERR_STORAGE_CORRUPT');
        }
    } finally {
        closeSync(fd);
    }
    for (const name of names) {
        const path = join(targetDir, databaseFileName(name));
        if (fstatSizeOf(path) === 0) continue;
        const conn = new BetterSqlite3(path, { timeout: 0 });
        let verdict: string;
        try {
            const rows = conn.pragma('integrity_check') as { integrity_check: string }[];
            verdict = rows.map((r) => r.integrity_check).join('; ');
        } finally {
            conn.close();
        }
        if (verdict !== 'ok') throw new StorageError(`snapshot: ${name}: ${verdict}`, 'ERR_STORAGE_CORRUPT');
    }
    fsyncPath(targetDir);
    return { index, databases: names };
}

function fstatSizeOf(path: string): number {
    const fd = openSync(path, 'r');
    try {
        return fstatSync(fd).size;
    } finally {
        closeSync(fd);
    }
}
