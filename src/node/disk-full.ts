// A leader whose disk is full hands its leadership over, so that the cluster keeps taking
// writes. Without this, a leader whose file system filled up stayed leader and answered every
// write SQLITE_FULL while its followers had room: the whole cluster was unavailable for writes
// because of one disk (the failure class of jepsen.dqlite's disk nemesis; TESTING.md §1.1–1.2).
//
// The signal is SQL that failed on the leader with SQLITE_FULL or SQLITE_IOERR (NodeSqlSession),
// or a session whose database could not be opened (on a full disk SQLite cannot grow its -shm
// file: an I/O error, which the worker reports as a StorageError). It is a full disk only if the
// file system holding the databases (`<dataDir>/db`) has less than DISK_FULL_FREE_BYTES left:
// SQLITE_FULL with room left is SQLite's max_page_count, one transaction larger than the room, or
// SQLite's temporary files on another file system, which moves nothing. On a full disk, leadership
// goes to the most up-to-date voter the leader heard from recently (chooseTransferTarget); the node
// stays a member: as a follower it fails on its own (StorageError, fail-stop) once its log or
// database cannot grow, or goes on if room was made in time. Without a voter to take over (a
// one-node cluster) nothing moves: writes keep failing SQLITE_FULL, reads go on, and writes
// work again once there is room. At most one check per DISK_FULL_RETRY_MS, so that a cluster
// whose disks are all full does not pass leadership around faster than that.
//
// Lifecycle: one check at a time (`state`), owned by this watch. stop() (the node's close, first
// thing) ends it: a statfs still pending returns into a stopped watch and does nothing more; a
// transfer in flight is the node's (the driver's close rejects it) and close() waits for it only,
// never for the file system (a hung one must not hang the node's close).

import { statfs } from 'node:fs/promises';
import { sqliteCodeOf } from '../fsm/sqlite-codes.js';
import type { Clock } from '../lib/clock.js';
import { SqliteError, StorageError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { NodeId, Role } from '../raft/types.js';
import { chooseTransferTarget } from './transfer-target.js';

/** Below this many free bytes, a failure of mayBeFullDisk means the databases' disk is full. */
export const DISK_FULL_FREE_BYTES = 32 * 1024 * 1024;
/** A leader checks (and hands over) at most this often. */
export const DISK_FULL_RETRY_MS = 10_000;

const SQLITE_IOERR = sqliteCodeOf('SQLITE_IOERR');
const SQLITE_FULL = sqliteCodeOf('SQLITE_FULL');

export interface DiskFullHost {
    readonly id: NodeId;
    /** The directory of the databases, whose file system is checked. */
    readonly dbDir: string;
    readonly clock: Clock;
    readonly logger: Logger;
    /** Free bytes of the file system that holds `dir`. Default: statfs, blocks available × size. */
    readonly freeBytes?: (dir: string) => Promise<number>;
    isLeader(): boolean;
    members(): readonly { id: NodeId; role: Role }[];
    /** Members heard from within an election timeout, with the index their log matches up to. */
    contacted(): ReadonlyMap<NodeId, number>;
    transfer(id: NodeId): Promise<void>;
}

/** Free bytes an unprivileged writer can still use on the file system of `dir`. */
export async function freeBytesOf(dir: string): Promise<number> {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
}

/** Errors a full disk gives a leader's SQL: SQLITE_FULL, SQLITE_IOERR, a (non-corrupt) StorageError. */
export function mayBeFullDisk(error: unknown): boolean {
    if (error instanceof SqliteError) {
        const primary = error.sqliteCode & 0xff;
        return primary === SQLITE_FULL || primary === SQLITE_IOERR;
    }
    return error instanceof StorageError && error.code === 'ERR_STORAGE';
}

export class DiskFullWatch {
    private state: 'idle' | 'checking' | 'closed' = 'idle';
    private transferring: Promise<void> | undefined;
    private lastCheckMs = -Infinity;

    constructor(private readonly host: DiskFullHost) {}

    /** SQL failed with `error`: on a leader, mayBeFullDisk starts a check, unless one ran lately. */
    report(error: unknown): void {
        if (this.state !== 'idle' || !mayBeFullDisk(error) || !this.host.isLeader()) return;
        const now = this.host.clock.now();
        if (now - this.lastCheckMs < DISK_FULL_RETRY_MS) return;
        this.lastCheckMs = now;
        this.state = 'checking';
        void this.check(error).catch((e: unknown) => {
            if (this.state === 'checking') this.host.logger.warn({ err: e }, 'disk full: handover failed');
        }).finally(() => {
            if (this.state === 'checking') this.state = 'idle';
        });
    }

    private async check(error: unknown): Promise<void> {
        const free = await (this.host.freeBytes ?? freeBytesOf)(this.host.dbDir);
        if (this.state !== 'checking' || !this.host.isLeader()) return;
        if (free >= DISK_FULL_FREE_BYTES) {
            this.host.logger.info({ free, err: error }, 'SQL failed with room left on disk (max_page_count, a '
                + 'large transaction, temporary files, or not the disk at all): leadership stays');
            return;
        }
        const contacted = this.host.contacted();
        const target = chooseTransferTarget(this.host.members(), this.host.id, contacted, contacted);
        if (target === undefined) {
            this.host.logger.warn({ free }, 'disk full, and no voter to take leadership over: writes fail until '
                + 'there is room');
            return;
        }
        this.host.logger.warn({ free, target: String(target) }, 'disk full: handing leadership over');
        this.transferring = this.host.transfer(target);
        try {
            await this.transferring;
        } finally {
            this.transferring = undefined;
        }
    }

    /** No check starts or goes on after this. Idempotent. */
    stop(): void {
        this.state = 'closed';
    }

    /** stop(), then waits for a transfer this watch started (the node's close rejects it). */
    async close(): Promise<void> {
        this.stop();
        await this.transferring?.catch(() => undefined);
    }
}
