// Where the state machine keeps its files, and the small durable state file. Everything here
// runs in the SQLite worker with synchronous calls (see wal.ts for why that is fine).
//
//   <dir>/state              {"format":1,"generation":g,"durableIndex":d}; replaced atomically
//   <dir>/gen-<g>/           the databases of generation g: <file>, <file>-wal, <file>-shm,
//                            and <file>.undo while an undo is in progress
//   <dir>/install-<n>/       a snapshot being installed (deleted on start)
//   <dir>/snapshot-<n>       a produced snapshot (deleted on start)
//
// A database name maps to a file name that is safe on any file system: "d_" then the name
// with every byte outside [A-Za-z0-9_-] written as %XX.
// Durability order, used for every file replaced here: write → fsync → rename → fsync the
// directory (DESIGN.md §5).

import {
    closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../lib/errors.js';

export interface DurableState {
    readonly generation: number;
    readonly durableIndex: number;
}

export function databaseFileName(database: string): string {
    let out = 'd_';
    for (const byte of Buffer.from(database, 'utf8')) {
        const c = String.fromCharCode(byte);
        out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
    }
    return out;
}

/** The longest file name a database may get: its own plus '.undo', within NAME_MAX (255). */
const DATABASE_FILE_NAME_MAX = 255 - '.undo'.length;

/** Why `database` cannot name a database (a client's OPEN), or undefined when it can. */
export function databaseNameProblem(database: string): string | undefined {
    if (database.length === 0) return 'the database name is empty';
    if (database.includes('\0')) return 'the database name contains a NUL character';
    if (databaseFileName(database).length > DATABASE_FILE_NAME_MAX) {
        return `the database name is too long (its file name would exceed ${DATABASE_FILE_NAME_MAX} bytes)`;
    }
    return undefined;
}

export function databaseNameOf(fileName: string): string | undefined {
    if (!fileName.startsWith('d_') || /-wal$|-shm$|\.undo$/.test(fileName)) return undefined;
    const bytes: number[] = [];
    const text = fileName.slice(2);
    for (let i = 0; i < text.length; i++) {
        if (text[i] === '%') {
            bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
            i += 2;
        } else {
            bytes.push(text.charCodeAt(i));
        }
    }
    return Buffer.from(bytes).toString('utf8');
}

export function generationDir(dir: string, generation: number): string {
    return join(dir, `gen-${generation}`);
}

export function fsyncPath(path: string): void {
    const fd = openSync(path, 'r');
    try {
        fsyncSync(fd);
    } finally {
        closeSync(fd);
    }
}

/** Writes `data` to `path` durably: temporary file → fsync → rename → fsync the directory. */
export function writeFileDurably(dir: string, name: string, data: Uint8Array): void {
    const tmp = join(dir, `${name}.tmp`);
    const fd = openSync(tmp, 'w');
    try {
        let done = 0;
        while (done < data.length) done += writeSync(fd, data, done, data.length - done, done);
        fsyncSync(fd);
    } finally {
        closeSync(fd);
    }
    renameSync(tmp, join(dir, name));
    fsyncPath(dir);
}

export function readDurableState(dir: string): DurableState | undefined {
    const path = join(dir, 'state');
    if (!existsSync(path)) return undefined;
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
        throw new StorageError(`fsm state file is unreadable: ${path}`, 'ERR_STORAGE_CORRUPT', { cause: error });
    }
    const s = parsed as { format?: unknown; generation?: unknown; durableIndex?: unknown };
    if (s.format !== 1 || !Number.isSafeInteger(s.generation) || !Number.isSafeInteger(s.durableIndex)) {
        throw new StorageError(`fsm state file is malformed: ${path}`, 'ERR_STORAGE_CORRUPT');
    }
    return { generation: s.generation as number, durableIndex: s.durableIndex as number };
}

export function writeDurableState(dir: string, state: DurableState): void {
    const text = JSON.stringify({ format: 1, generation: state.generation, durableIndex: state.durableIndex });
    writeFileDurably(dir, 'state', Buffer.from(text, 'utf8'));
}

export function ensureDir(path: string): void {
    if (!existsSync(path)) {
        mkdirSync(path, { recursive: true });
    }
}

export function removeTree(path: string): void {
    rmSync(path, { recursive: true, force: true });
}
