// The undo file: the committed images of the pages that uncommitted local transactions
// changed, plus the committed database size, made durable before the database file is
// touched, so that a crash in the middle of an undo is finished by the next start.
//
//   "TQUNDO01", pageSize u32, committedSizePages u32, count u32, 0 u32,
//   count × (pgno u32, 0 u32, page image), crc32c u32 of all previous bytes, 0 u32.
// Little-endian. A file whose checksum does not match was never completely written, so the
// database was not touched yet: it is deleted without being applied.

import {
    closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, unlinkSync, writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32c } from '../lib/crc32c.js';
import { fsyncPath } from './layout.js';
import { readExactly } from './wal.js';

const MAGIC = Buffer.from('TQUNDO01', 'latin1');

export interface UndoPage {
    readonly pgno: number;
    readonly image: Uint8Array;
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Writes the undo file durably (fsync of the file and of its directory). */
export function writeUndoFile(path: string, pageSize: number, committedSizePages: number,
    pages: Iterable<UndoPage>, count: number): void {
    const fd = openSync(path, 'w');
    try {
        const head = Buffer.alloc(24);
        MAGIC.copy(head, 0);
        head.writeUInt32LE(pageSize, 8);
        head.writeUInt32LE(committedSizePages, 12);
        head.writeUInt32LE(count, 16);
        let crc = crc32c(head);
        writeAll(fd, head, 0);
        let at = head.length;
        let written = 0;
        const ph = Buffer.alloc(8);
        for (const page of pages) {
            ph.writeUInt32LE(page.pgno, 0);
            crc = crc32c(page.image, crc32c(ph, crc));
            writeAll(fd, ph, at);
            writeAll(fd, page.image, at + 8);
            at += 8 + pageSize;
            written++;
        }
        if (written !== count) throw new Error(`undo file: expected ${count} pages, got ${written}`);
        const tail = Buffer.alloc(8);
        tail.writeUInt32LE(crc, 0);
        writeAll(fd, tail, at);
        fsyncSync(fd);
    } finally {
        closeSync(fd);
    }
    fsyncPath(dirname(path));
}

/**
 * Applies a complete undo file to `databasePath` (page images, then truncation to the
 * committed size), fsyncs the database, removes the undo file and fsyncs the directory.
 * Returns false (and only removes the file) when the undo file is incomplete.
 */
export function applyUndoFile(undoPath: string, databasePath: string): boolean {
    if (!existsSync(undoPath)) return false;
    const fd = openSync(undoPath, 'r');
    let valid = false;
    let pageSize = 0;
    let committedSizePages = 0;
    const pages: UndoPage[] = [];
    try {
        const size = fstatSync(fd).size;
        const head = Buffer.alloc(24);
        if (readExactly(fd, head, 0) === 24 && head.subarray(0, 8).equals(MAGIC)) {
            pageSize = head.readUInt32LE(8);
            committedSizePages = head.readUInt32LE(12);
            const count = head.readUInt32LE(16);
            if (pageSize >= 512 && size === 24 + count * (8 + pageSize) + 8) {
                let crc = crc32c(head);
                let at = 24;
                for (let i = 0; i < count; i++) {
                    const rec = Buffer.alloc(8 + pageSize);
                    readExactly(fd, rec, at);
                    crc = crc32c(rec, crc);
                    pages.push({ pgno: rec.readUInt32LE(0), image: rec.subarray(8) });
                    at += rec.length;
                }
                const tail = Buffer.alloc(8);
                readExactly(fd, tail, at);
                valid = tail.readUInt32LE(0) === crc;
            }
        }
    } finally {
        closeSync(fd);
    }
    if (valid) {
        const db = openSync(databasePath, existsSync(databasePath) ? 'r+' : 'w+');
        try {
            for (const page of pages) {
                if (page.pgno <= committedSizePages) writeAll(db, page.image, (page.pgno - 1) * pageSize);
            }
            ftruncateSync(db, committedSizePages * pageSize);
            fsyncSync(db);
        } finally {
            closeSync(db);
        }
    }
    unlinkSync(undoPath);
    fsyncPath(dirname(undoPath));
    return valid;
}
