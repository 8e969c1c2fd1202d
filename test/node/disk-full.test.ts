// Goal: DiskFullWatch (src/node/disk-full.ts) decides alone, from the error and the free space,
// whether a leader hands leadership over: which errors start a check, the free-space threshold,
// one check per DISK_FULL_RETRY_MS, no target → nothing, and nothing after stop().
// Method: a fake host (ManualClock time, free bytes and members given by the test, transfers
// recorded); the real-cluster behaviour is in test/integration/disk-full.slow.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/lib/clock.js';
import { NotLeaderError, SqliteError, StorageError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import {
    DISK_FULL_FREE_BYTES, DISK_FULL_RETRY_MS, DiskFullWatch, mayBeFullDisk, type DiskFullHost,
} from '../../src/node/disk-full.js';

function host(free: number, options: { leader?: boolean; voters?: bigint[] } = {}): {
    host: DiskFullHost; clock: ManualClock; transfers: bigint[]; checks: () => number;
} {
    const clock = new ManualClock();
    const transfers: bigint[] = [];
    let checks = 0;
    const voters = options.voters ?? [1n, 2n, 3n];
    return {
        clock, transfers, checks: () => checks,
        host: {
            id: 1n, dbDir: '/nowhere', clock, logger: silentLogger,
            freeBytes: async () => {
                checks++;
                return free;
            },
            isLeader: () => options.leader ?? true,
            members: () => voters.map((id) => ({ id, role: 'voter' as const })),
            contacted: () => new Map(voters.map((id) => [id, id === 3n ? 10 : 5])),
            transfer: async (id) => void transfers.push(id),
        },
    };
}

/** Lets the watch's check (a few promise hops) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const full = new SqliteError(13, 'database or disk is full');

test('mayBeFullDisk: SQLITE_FULL, SQLITE_IOERR (extended too), a storage error; nothing else', () => {
    assert.equal(mayBeFullDisk(full), true);
    assert.equal(mayBeFullDisk(new SqliteError(10, 'disk I/O error')), true);
    assert.equal(mayBeFullDisk(new SqliteError(10 | (13 << 8), 'IOERR_FSYNC')), true);
    assert.equal(mayBeFullDisk(new StorageError('fsm worker: disk I/O error', 'ERR_STORAGE')), true);
    assert.equal(mayBeFullDisk(new StorageError('checksum', 'ERR_STORAGE_CORRUPT')), false);
    assert.equal(mayBeFullDisk(new SqliteError(19, 'constraint')), false);
    assert.equal(mayBeFullDisk(new SqliteError(18, 'too big')), false);
    assert.equal(mayBeFullDisk(new NotLeaderError('not leader')), false);
});

test('a full disk: leadership to the most up-to-date voter; at most one check per retry interval', async () => {
    const h = host(DISK_FULL_FREE_BYTES - 1);
    const watch = new DiskFullWatch(h.host);
    watch.report(full);
    await settle();
    assert.deepEqual(h.transfers, [3n]);
    watch.report(full);
    h.clock.advance(DISK_FULL_RETRY_MS - 1);
    watch.report(full);
    await settle();
    assert.equal(h.checks(), 1);
    h.clock.advance(1);
    watch.report(full);
    await settle();
    assert.deepEqual(h.transfers, [3n, 3n]);
    await watch.close();
});

test('room left, not leader, other errors, no other voter: nothing moves', async () => {
    const room = host(DISK_FULL_FREE_BYTES);
    const w1 = new DiskFullWatch(room.host);
    w1.report(full);
    await settle();
    assert.equal(room.checks(), 1);
    assert.deepEqual(room.transfers, []);

    const follower = host(0, { leader: false });
    new DiskFullWatch(follower.host).report(full);
    const other = host(0);
    new DiskFullWatch(other.host).report(new SqliteError(19, 'constraint'));
    const alone = host(0, { voters: [1n] });
    new DiskFullWatch(alone.host).report(full);
    await settle();
    assert.equal(follower.checks() + other.checks(), 0);
    assert.equal(alone.checks(), 1);
    assert.deepEqual([...follower.transfers, ...other.transfers, ...alone.transfers], []);
});

test('stop(): no check starts, and one whose statfs is pending ends without a transfer', async () => {
    const h = host(0);
    const watch = new DiskFullWatch(h.host);
    watch.report(full); // statfs pending
    watch.stop();
    await settle();
    assert.equal(h.checks(), 1);
    assert.deepEqual(h.transfers, []);
    watch.report(full);
    await settle();
    assert.equal(h.checks(), 1);
    await watch.close();
    await watch.close();
});
